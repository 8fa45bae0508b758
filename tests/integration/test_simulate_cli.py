"""``stratacache simulate``: the CLI over :mod:`stratacache.simulate` (JSON, table, PNG plot, bad input)."""

from __future__ import annotations

import gzip
import json
import random
import sys
from typing import TYPE_CHECKING

import pytest

from stratacache.simulate import DEFAULT_POLICIES, missing_policies

if TYPE_CHECKING:
    from pathlib import Path

import typer.testing as typer_testing

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _invoke(*args: str) -> typer_testing.Result:  # type: ignore[name-defined]
    from stratacache.cli import make_app

    return typer_testing.CliRunner().invoke(make_app(), ["simulate", *args])


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    rng = random.Random(3)
    weights = [1 / (i + 1) for i in range(500)]
    path = tmp_path / "trace.txt"
    path.write_text("".join(f"k{k}\n" for k in rng.choices(range(500), weights=weights, k=5000)), encoding="utf-8")
    return path


def test_json(trace: Path) -> None:
    result = _invoke(str(trace), "--capacity", "10", "--capacity", "100", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["requests"] == 5000
    assert doc["capacities"] == [10, 100]
    expected = [p for p in DEFAULT_POLICIES if p not in missing_policies(DEFAULT_POLICIES)]
    assert doc["policies"] == expected
    assert {(r["policy"], r["capacity"]) for r in doc["results"]} == {(p, c) for p in expected for c in (10, 100)}
    for r in doc["results"]:
        assert r["hits"] <= r["requests"] == 5000
        assert r["hit_ratio"] == pytest.approx(r["hits"] / 5000)
    opt = {r["capacity"]: r["hits"] for r in doc["results"] if r["policy"] == "opt"}
    for r in doc["results"]:
        assert r["hits"] <= opt[r["capacity"]]


def test_default_capacities_and_chosen_policies(trace: Path) -> None:
    result = _invoke(str(trace), "--policy", "lru", "-p", "opt-demand", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    distinct = doc["distinct_keys"]
    assert doc["capacities"] == sorted({max(1, round(distinct * 0.01)), max(1, round(distinct * 0.1))})
    assert doc["policies"] == ["lru", "opt-demand"]


def test_table(trace: Path) -> None:
    result = _invoke(str(trace), "-c", "50", "-p", "lru", "-p", "tinylfu", "-p", "opt")
    assert result.exit_code == 0, result.output
    for text in ("lru", "tinylfu", "opt", "50", "%"):
        assert text in result.stdout


def test_csv_gzip(tmp_path: Path) -> None:
    path = tmp_path / "log.csv.gz"
    path.write_bytes(gzip.compress(b"ts,key\n1,a\n2,b\n3,a\n4,a\n"))
    result = _invoke(str(path), "--column", "key", "-c", "1", "-p", "lru", "--json")
    assert result.exit_code == 0, result.output
    [r] = json.loads(result.stdout)["results"]
    assert (r["hits"], r["requests"]) == (1, 4)


def test_plot_writes_a_png(trace: Path, tmp_path: Path) -> None:
    out = tmp_path / "plot.png"
    result = _invoke(str(trace), "-c", "10", "-c", "100", "--plot", str(out))
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert len(data) > 1000
    assert data.startswith(PNG_MAGIC)


def test_plot_without_matplotlib(trace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import raises ImportError
    out = tmp_path / "plot.png"
    result = _invoke(str(trace), "--plot", str(out))
    assert result.exit_code == 2
    assert "stratacache[sim]" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"", [], "no key"),
        (bytes(range(256)), [], "binary"),
        (b"ts,key\n1,a\n", ["--column", "user"], "no column"),
        (gzip.compress(b"a\n" * 50)[:12], [], "gzip"),
    ],
    ids=["empty", "binary", "missing-column", "truncated-gzip"],
)
def test_bad_trace(tmp_path: Path, content: bytes, args: list[str], message: str) -> None:
    path = tmp_path / "bad.trace"
    path.write_bytes(content)
    result = _invoke(str(path), *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--policy", "fifo"], "fifo"), (["--capacity", "0"], "--capacity")],
)
def test_bad_options(trace: Path, args: list[str], message: str) -> None:
    result = _invoke(str(trace), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_file(tmp_path: Path) -> None:
    result = _invoke(str(tmp_path / "absent.txt"))
    assert result.exit_code == 1
    assert "cannot read" in result.output
    assert "Traceback" not in result.output
