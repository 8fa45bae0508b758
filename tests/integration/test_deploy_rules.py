"""The Prometheus rules in deploy/prometheus: ``promtool check rules`` and their ``promtool test rules`` unit tests.

promtool comes with Prometheus (Debian: the ``prometheus`` package; ``scripts/ensure-servers.sh`` installs it). A
missing promtool skips these tests, or fails them under ``STRATACACHE_REQUIRE_SERVERS=1`` (``servers._missing``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from tests.support.servers import _missing

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "stratacache-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests"


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
