"""deploy/ under promtool: the rules pass ``promtool check rules`` and their unit tests, the board's queries parse.

promtool comes with Prometheus (Debian: the ``prometheus`` package; ``scripts/ensure-servers.sh`` installs it). A
missing promtool skips these tests, or fails them under ``STRATACACHE_REQUIRE_SERVERS=1`` (``servers._missing``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.support.servers import _missing

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "stratacache-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests"
BOARD = ROOT / "deploy" / "grafana" / "stratacache.json"
# Grafana's variables, as Grafana would expand them for a query
_VARIABLES = {"$__rate_interval": "1m", "$namespace": ".*", "$tier": ".*"}


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        _missing("promtool")
    return path


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=100, check=False)


def test_the_rules_pass_promtool_check(promtool: str) -> None:
    done = _run(promtool, "check", "rules", str(RULES))
    assert done.returncode == 0, f"promtool check rules failed:\n{done.stdout}\n{done.stderr}"
    assert "SUCCESS" in done.stdout, done.stdout


def test_the_rules_pass_their_unit_tests(promtool: str) -> None:
    files = sorted(RULE_TESTS.glob("*.yml"))
    assert files, f"no promtool unit tests in {RULE_TESTS}"
    done = _run(promtool, "test", "rules", *map(str, files))
    assert done.returncode == 0, f"promtool test rules failed:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.count("SUCCESS") == len(files), done.stdout


def _panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for item in items for p in (item, *_panels(item.get("panels", [])))]  # a collapsed row nests its panels


def _board_exprs() -> list[str]:
    board = json.loads(BOARD.read_text())
    return [t["expr"] for p in _panels(board["panels"]) for t in p.get("targets", []) if t.get("expr")]


def test_the_boards_queries_parse(promtool: str, tmp_path: Path) -> None:
    exprs = _board_exprs()
    assert len(exprs) > 20
    rules = []
    for i, expr in enumerate(exprs):
        expanded = expr
        for name, value in _VARIABLES.items():
            expanded = expanded.replace(name, value)
        assert "$" not in expanded, expr
        rules.append({"record": f"board:expr_{i}", "expr": expanded})
    path = tmp_path / "board-rules.json"  # JSON is YAML: promtool reads it
    path.write_text(json.dumps({"groups": [{"name": "board", "rules": rules}]}))
    done = _run(promtool, "check", "rules", str(path))
    assert done.returncode == 0, f"a query of {BOARD.name} does not parse:\n{done.stdout}\n{done.stderr}"
