"""``stratacache stats | inspect | invalidate | top | warm`` against real tiers (SQLite files, Redis/Valkey)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING, Any

import pytest
import typer.testing as typer_testing
from prometheus_client import CollectorRegistry

import stratacache as sc
from stratacache.cli import make_app
from stratacache.metrics.prometheus import register, start_http_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def _run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> typer_testing.Result:
    result = typer_testing.CliRunner().invoke(
        make_app(), list(args), env={"COLUMNS": "200", **(env or {})}, input=stdin
    )
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _json(result: typer_testing.Result) -> Any:
    return json.loads(result.stdout)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shared.db'}"


# ---------------------------------------------------------------------------------------------- inspect


def test_inspect_shows_what_the_shared_tier_holds(db: str) -> None:
    with sc.Cache(sc.MemoryTier(), db, namespace="app") as app:
        app.set("user:1", {"name": "Ada"}, ttl=300, tags=["org:7"])
        app.set(("user", 2), "tuple key", ttl=300)
    result = _run("inspect", "user:1", "--url", db, "-n", "app", "--json")
    assert result.exit_code == 0, result.output
    (tier,) = _json(result)["tiers"]
    assert tier["tier"] == "sqlite"
    assert tier["present"] is True
    assert tier["current"] is True
    assert tier["tags"] == ["org:7"]
    assert 0 < tier["ttl_left"] <= 300
    table = _run("inspect", "user:1", "--url", db, "-n", "app")
    assert "served" in table.stdout
    assert "org:7" in table.stdout
    assert _run("inspect", '["user", 2]', "--json-key", "--url", db, "-n", "app").exit_code == 0
    absent = _run("inspect", "user:9", "--url", db, "-n", "app", "--json")
    assert absent.exit_code == 1
    assert _json(absent)["tiers"][0]["present"] is False


def test_inspect_after_an_invalidation_says_superseded(db: str) -> None:
    with sc.Cache(db, namespace="app") as app:
        app.set("k", 1, tags=["t"])
    assert _run("invalidate", "--url", db, "-n", "app", "--tag", "t").exit_code == 0
    result = _run("inspect", "k", "--url", db, "-n", "app")
    assert result.exit_code == 0
    assert "superseded" in result.stdout


# ---------------------------------------------------------------------------------------------- invalidate


def test_invalidate_keys_tags_and_namespaces_reach_other_caches(db: str) -> None:
    with sc.Cache(sc.MemoryTier(), db, namespace="tenant:1/users") as app:
        for i in range(4):
            app.set(f"k{i}", i, tags=["even" if i % 2 == 0 else "odd"])
        result = _run("invalidate", "--url", db, "-n", "tenant:1/users", "--key", "k0", "--key", "nope", "--json")
        assert result.exit_code == 0, result.output
        assert _json(result)["deleted"] == 1
        assert app.get("k0") is None  # the process's L1 heard it through the shared tier
        assert app.get("k2") == 2
        assert _run("invalidate", "--url", db, "-n", "tenant:1/users", "--tag", "odd").exit_code == 0
        assert app.get("k1") is None
        assert app.get("k3") is None
        assert app.get("k2") == 2
        assert _run("invalidate", "--url", db, "-n", "tenant:1", "--all").exit_code == 0  # the parent namespace
        assert app.get("k2") is None


def test_invalidate_through_redis_reaches_an_l1_over_the_backplane(redis_url: str) -> None:
    url = redis_url + ("&" if "?" in redis_url else "?") + "prefix=cli:"
    with sc.Cache(sc.MemoryTier(), url, namespace="r") as app:
        app.set("k", 1)
        assert app.get("k") == 1
        assert _run("invalidate", "--url", url, "-n", "r", "--key", "k").exit_code == 0
        deadline = time.monotonic() + 5
        while app.get("k") is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.get("k") is None


def test_invalidate_that_cannot_be_delivered_fails_with_exit_3() -> None:
    url = "redis://127.0.0.1:1/0?timeout=0.05&connect_timeout=0.05"  # nothing listens on port 1
    started = time.monotonic()
    result = _run("invalidate", "--url", url, "--tag", "t")
    assert result.exit_code == 3
    assert "not delivered" in result.output
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["invalidate", "--url", "sqlite:///x.db"], "nothing to invalidate"),
        (["invalidate", "--tag", "t"], "no tier"),
        (["invalidate", "--url", "memory://", "--tag", "t"], "memory tier"),
        (["invalidate", "--url", "bogus://x", "--tag", "t"], "unknown tier scheme"),
        (["inspect", "", "--url", "sqlite:///x.db"], "empty key"),
        (["inspect", "[1,", "--json-key", "--url", "sqlite:///x.db"], "not JSON"),
        (["stats"], "nothing to show"),
        (["stats", "--metrics", "ftp://x"], "http"),
        (["top"], "no access log"),
        (["warm", "--url", "sqlite:///x.db"], "nothing to warm"),
        (["warm", "--url", "sqlite:///x.db", "--loader", "nocolon"], "MODULE:FUNCTION"),
        (["warm", "--url", "sqlite:///x.db", "--loader", "no_such_module_xyz:f"], "cannot import"),
    ],
)
def test_bad_input_gives_a_clear_message_and_a_nonzero_exit(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STRATACACHE_URL", raising=False)
    result = _run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


# ---------------------------------------------------------------------------------------------- stats


@pytest.fixture
def metrics_endpoint(db: str) -> Iterator[tuple[str, sc.Cache]]:
    registry = CollectorRegistry()
    cache = sc.Cache(sc.MemoryTier(), db, namespace="live")
    register(cache, registry)
    server = start_http_server(0, registry=registry)
    httpd = server[0] if isinstance(server, tuple) else server
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/metrics", cache
    finally:
        httpd.shutdown()
        httpd.server_close()
        cache.close()


def test_stats_reads_the_tiers_and_the_processes_metrics(db: str, metrics_endpoint: tuple[str, sc.Cache]) -> None:
    endpoint, cache = metrics_endpoint
    cache.set("a", 1)
    for _ in range(3):
        cache.get("a")
    cache.get("missing")
    cache.get_or_load("b", lambda: 2)
    result = _run("stats", "--url", db, "-n", "live", "--metrics", endpoint, "--json")
    assert result.exit_code == 0, result.output
    doc = _json(result)
    (tier,) = doc["tiers"]
    assert (tier["tier"], tier["status"], tier["entries"]) == ("sqlite", "ok", 2)
    rows = {row["tier"]: row for row in doc["processes"]["tiers"]}
    assert rows["memory"]["hit"] == 3
    assert rows["memory"]["miss"] == 2
    assert rows["memory"]["hit_ratio"] == pytest.approx(0.6)
    (engine,) = doc["processes"]["engine"]
    assert engine["loads"] == 1
    table = _run("stats", "--url", db, "-n", "live", "--metrics", endpoint)
    assert "60.0%" in table.stdout
    assert "sqlite" in table.stdout


def test_stats_watch_shows_rates_between_refreshes(metrics_endpoint: tuple[str, sc.Cache]) -> None:
    endpoint, cache = metrics_endpoint
    cache.set("a", 1)
    result = _run("stats", "--metrics", endpoint, "--watch", "--interval", "0.2", "--count", "2", "--json")
    assert result.exit_code == 0, result.output
    assert result.stdout.count('"per_second"') >= 2  # the second refresh has rates (memory and sqlite rows)


def test_stats_of_an_unreachable_tier_exits_3() -> None:
    result = _run("stats", "--url", "redis://127.0.0.1:1/0?timeout=0.05&connect_timeout=0.05", "--json")
    assert result.exit_code == 3
    assert _json(result)["tiers"][0]["status"] == "unreachable"


def test_stats_of_an_unreachable_metrics_endpoint_exits_3() -> None:
    result = _run("stats", "--metrics", "http://127.0.0.1:1/metrics")
    assert result.exit_code == 3
    assert "cannot scrape" in result.output


# ---------------------------------------------------------------------------------------------- top


def test_top_ranks_the_keys_of_the_access_logs(tmp_path: Path) -> None:
    for worker in range(2):
        log = sc.AccessLog(rate=1.0, path=tmp_path / f"access-{worker}.log")
        with sc.Cache(namespace="t", access_log=log) as cache:
            for i in range(100):
                cache.get("hot" if i % 2 else f"cold{i % 10}")
    result = _run("top", "--log", str(tmp_path / "access-*.log"), "--limit", "3", "--json")
    assert result.exit_code == 0, result.output
    doc = _json(result)
    assert doc["samples"] == 200
    assert doc["keys"][0] == {"key": "hot", "samples": 100, "share": 0.5}
    assert len(doc["keys"]) == 3
    assert "hot" in _run("top", "--log", str(tmp_path / "access-0.log")).stdout
    assert _run("top", "--log", str(tmp_path / "nothing-*.log")).exit_code == 1


# ---------------------------------------------------------------------------------------------- warm


def test_warm_from_keys_and_a_loader_then_skips_cached_keys(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "warm_loader.py").write_text(
        textwrap.dedent(
            """
            def load(key):
                if key == "bad":
                    raise ValueError("no row")
                return {"key": key, "n": len(key)}

            def pairs():
                yield ("p1", 1)
                yield ("p2", 2)
            """
        )
    )
    (tmp_path / "keys.txt").write_text("a\nbb\n\nccc\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ("warm", "--url", db, "-n", "w", "--loader", "warm_loader:load", "--tag", "warm", "--json")
    result = _run(*args, "--keys", "keys.txt")
    assert result.exit_code == 0, result.output
    assert _json(result) | {"seconds": 0} == {"loaded": 3, "cached": 0, "failed": 0, "seconds": 0, "errors": []}
    again = _run(*args, "--keys", "-", stdin="a\nbad\nnew\n")
    assert again.exit_code == 1  # one key failed
    doc = _json(again)
    assert (doc["loaded"], doc["cached"], doc["failed"]) == (1, 1, 1)
    assert "no row" in doc["errors"][0]
    assert _run("warm", "--url", db, "-n", "w", "--loader", "warm_loader:pairs").exit_code == 0
    with sc.Cache(db, namespace="w") as cache:
        assert cache.get("ccc") == {"key": "ccc", "n": 3}
        assert cache.get("p2") == 2
        cache.invalidate_tags("warm")
        assert cache.get("a") is None


def test_warm_from_jsonl_records_with_ttl_and_tags(db: str, tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text(
        json.dumps({"key": "x", "value": [1, 2], "ttl": 60, "tags": ["t"]})
        + "\n"
        + json.dumps({"key": ["tuple", 1], "value": "y"})
        + "\n"
    )
    result = _run("warm", "--url", db, "-n", "j", "--jsonl", str(records))
    assert result.exit_code == 0, result.output
    with sc.Cache(db, namespace="j") as cache:
        assert cache.get("x") == [1, 2]
        assert cache.get(("tuple", 1)) == "y"
        info = cache.inspect("x")[0]
        assert info.ttl_left is not None
        assert info.ttl_left <= 60
        assert info.tags == ("t",)
    records.write_text('{"key": "x"}\n')
    bad = _run("warm", "--url", db, "-n", "j", "--jsonl", str(records))
    assert bad.exit_code == 2
    assert "line 1" in bad.output


# ---------------------------------------------------------------------------------------------- as a process


def test_the_commands_run_as_a_subprocess_with_env_configuration(db: str) -> None:
    with sc.Cache(db, namespace="env") as cache:
        cache.set("k", 1)
    env = {"STRATACACHE_URL": db, "STRATACACHE_NAMESPACE": "env", "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "stratacache.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        return proc

    assert json.loads(cli("inspect", "k", "--json").stdout)["tiers"][0]["present"] is True
    assert "1 of 1 key(s) deleted" in cli("invalidate", "--key", "k").stdout
