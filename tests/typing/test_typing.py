"""Type-check the public API: ``api_pass.py`` must pass ``mypy --strict``; ``api_fail.py`` must fail exactly on
the lines marked ``# E: <code>[, <code>...]`` with exactly those error codes, and nowhere else.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
from mypy import api as mypy_api

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PASS_FILE = HERE / "api_pass.py"
FAIL_FILE = HERE / "api_fail.py"

_MARK = re.compile(r"#\s*E:\s*(?P<codes>[a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)\s*$")
_LINE = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+):(?:\d+:)?\s*(?P<kind>error|note|warning):\s*(?P<msg>.*?)(?:\s+\[(?P<code>[a-z0-9-]+)\])?$"
)


def expected_errors(path: Path) -> dict[int, set[str]]:
    """``{line: {codes}}`` from the ``# E:`` markers of ``path``."""
    out: dict[int, set[str]] = {}
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = _MARK.search(text)
        if m:
            out[number] = {c.strip() for c in m.group("codes").split(",")}
    return out


def parse_report(report: str) -> dict[Path, dict[int, set[str]]]:
    """``{file: {line: {codes}}}`` of the errors in a mypy report (notes are context, not errors)."""
    found: dict[Path, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for raw in report.splitlines():
        m = _LINE.match(raw.strip())
        if m is None or m.group("kind") != "error":
            continue
        found[Path(m.group("path")).resolve()][int(m.group("line"))].add(m.group("code") or "<no code>")
    return {path: dict(lines) for path, lines in found.items()}


def test_marker_parsing() -> None:
    # guards the comparison below against a parser that silently finds nothing
    assert expected_errors(PASS_FILE) == {}
    marks = expected_errors(FAIL_FILE)
    assert len(marks) >= 30
    assert any(len(codes) > 1 for codes in marks.values())
    report = (
        f"{FAIL_FILE}:3: error: Bad thing  [arg-type]\n{FAIL_FILE}:3: note: context\n{FAIL_FILE}:9:5: error: x  [misc]"
    )
    assert parse_report(report) == {FAIL_FILE: {3: {"arg-type"}, 9: {"misc"}}}


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, int]:
    cache_dir = tmp_path_factory.mktemp("mypy-cache")
    return mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--strict",
            "--show-error-codes",
            "--show-absolute-path",
            "--no-pretty",
            "--no-error-summary",
            "--cache-dir",
            str(cache_dir),
            str(PASS_FILE),
            str(FAIL_FILE),
        ]
    )


@pytest.mark.slow
def test_api_pass_has_no_errors(mypy_report: tuple[str, str, int]) -> None:
    stdout, stderr, _status = mypy_report
    assert "error:" not in stderr, stderr
    errors = parse_report(stdout).get(PASS_FILE, {})
    assert errors == {}, stdout
    assert str(FAIL_FILE) in stdout, "mypy did not report on api_fail.py at all:\n" + stdout + stderr


@pytest.mark.slow
def test_api_fail_errors_exactly_on_marked_lines(mypy_report: tuple[str, str, int]) -> None:
    stdout, stderr, status = mypy_report
    assert status == 1, stdout + stderr
    found = parse_report(stdout)
    unexpected_files = set(found) - {PASS_FILE, FAIL_FILE}
    assert not unexpected_files, stdout
    got = found.get(FAIL_FILE, {})
    want = expected_errors(FAIL_FILE)
    missing = {line: codes - got.get(line, set()) for line, codes in want.items() if codes - got.get(line, set())}
    extra = {line: codes - want.get(line, set()) for line, codes in got.items() if codes - want.get(line, set())}
    assert (missing, extra) == ({}, {}), stdout
