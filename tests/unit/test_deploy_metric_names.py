"""deploy/ against the exporter: every metric the alert rules and the Grafana board query is one stratacache exports.

The exported names come from a real registry: a ``Cache`` (memory L1, SQLite L2) that did gets, sets, loads and
invalidations, registered with ``stratacache.metrics.prometheus.register``. The rules file is read without a YAML
library (the test extra has none): a line-based reader that knows the shape of a Prometheus rules file, checked
against the number of ``expr:`` lines so that it cannot silently skip a rule.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client import CollectorRegistry

import stratacache as sc
from stratacache.metrics.prometheus import register
from stratacache.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "stratacache-rules.yml"
BOARD = ROOT / "deploy" / "grafana" / "stratacache.json"
RUNBOOK = ROOT / "docs" / "runbook.md"

NOT_EXPORTED_YET = frozenset(
    {
        # exported by the PostgreSQL invalidation source, not built yet
        "stratacache_pg_replication_slot_lag_bytes",
    }
)

_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


# ------------------------------------------------------------------------------------------------ the exporter


def _declared(family: Any) -> set[str]:
    return {family.name + suffix for suffix in _SUFFIXES[family.type]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> frozenset[str]:
    """Sample names of a real scrape, plus the declared names of families this configuration leaves empty.

    ``stratacache_breaker_state`` and ``stratacache_backplane_up`` only have samples for a tier with a breaker and
    a backplane (Redis): their families are still collected, empty, and name what a Redis tier exports.
    """
    clock = FakeClock()
    path = tmp_path_factory.mktemp("deploy") / "c.db"
    registry = CollectorRegistry()
    with sc.Cache(
        sc.MemoryTier(max_entries=2, max_bytes="1MiB"),
        sc.SQLiteTier(path),
        namespace="app",
        clock=clock,
        tenant_of=lambda key: key.split(":", 1)[0],
    ) as cache:
        register(cache, registry)
        cache.set("t1:a", 1, tags=["t"])
        cache.set("t1:b", 2, ttl=1)
        cache.set("t2:c", 3)  # the L1 holds 2 entries: one is evicted for room
        assert cache.get("t1:a") == 1
        assert cache.get("t2:missing") is None
        assert cache.get_or_load("t2:d", lambda: 4) == 4
        with pytest.raises(ZeroDivisionError):
            cache.get_or_load("t2:e", lambda: 1 // 0)
        clock.advance(2)
        assert cache.get("t1:b") is None  # expired
        cache.invalidate_tags("t")
        cache.delete("t2:c")
        samples: set[str] = set()
        declared: set[str] = set()
        for family in registry.collect():
            names = {s.name for s in family.samples}
            if names:
                assert names <= _declared(family), (family.name, names)  # the declared names are what is scraped
            samples |= names
            declared |= _declared(family)
    assert "stratacache_requests_total" in samples
    assert "stratacache_tenant_requests_total" in samples
    assert "stratacache_load_duration_seconds_bucket" in samples
    assert "stratacache_invalidation_lag_seconds_bucket" in samples
    return frozenset(samples | declared)


# ------------------------------------------------------------------------------------------------ the rules file


def _rules() -> list[dict[str, str]]:
    """Each rule of the rules file: ``alert`` or ``record``, ``expr``, and its annotations and labels."""
    lines = RULES.read_text().splitlines()
    rules: list[dict[str, str]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if re.match(r"^\s*(#|$)", line):
            continue
        start = re.match(r"^(\s*)- (alert|record): (\S+)\s*$", line)
        if start:
            rules.append({start.group(2): start.group(3)})
            continue
        field = re.match(r"^(\s*)(\w+): ?(.*)$", line)
        if not field or not rules:
            continue
        indent, key, value = len(field.group(1)), field.group(2), field.group(3).strip()
        if value in {"|", "|-", ">", ">-"}:  # a block scalar: the more indented lines that follow
            block = []
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                block.append(lines[i].strip())
                i += 1
            value = ("\n" if value.startswith("|") else " ").join(block).strip()
        elif value[:1] in {'"', "'"}:
            value = value[1:-1]
        if value:
            rules[-1][key] = value
    assert len(rules) == sum(1 for line in lines if re.match(r"^\s*expr:", line)), "a rule was not read"
    assert all("expr" in rule for rule in rules)
    return rules


def _names(expr: str) -> set[str]:
    """``stratacache`` metric and recording-rule names in a PromQL expression (not in its strings or comments)."""
    code = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    code = re.sub(r"#[^\n]*", "", code)
    return set(re.findall(r"(?<![\w:])(stratacache[\w:]*)", code))


# ------------------------------------------------------------------------------------------------ the dashboard


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def _board_exprs() -> list[tuple[str, str]]:
    """``(where, expr)`` of every panel target and every query variable of the board."""
    board = json.loads(BOARD.read_text())
    out = []
    for panel in _panels(board["panels"]):
        out += [(f"panel {panel['title']!r}", t["expr"]) for t in panel.get("targets", []) if t.get("expr")]
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        out += [(f"variable {var['name']!r}", query), (f"variable {var['name']!r} definition", var["definition"])]
    return out


def _all_exprs() -> list[tuple[str, str]]:
    rules = [(f"rule {r.get('alert') or r.get('record')!r}", r["expr"]) for r in _rules()]
    return rules + _board_exprs()


# ------------------------------------------------------------------------------------------------ the tests


def test_the_reader_finds_every_rule_and_panel() -> None:
    rules = _rules()
    assert len([r for r in rules if "alert" in r]) >= 12
    assert any(r.get("record") == "stratacache:hit_ratio:rate5m" for r in rules)
    assert _names('rate(stratacache_requests_total{tier="stratacache_x"}[5m]) # stratacache_y') == {
        "stratacache_requests_total"
    }
    exprs = _board_exprs()
    assert any(where.startswith("variable 'namespace'") for where, _ in exprs)
    assert any("stratacache_tenant_requests_total" in expr for _, expr in exprs)  # inside the collapsed row


def test_every_metric_queried_is_exported(exported: frozenset[str]) -> None:
    missing = {
        (where, name)
        for where, expr in _all_exprs()
        for name in _names(expr)
        if ":" not in name and name not in exported and name not in NOT_EXPORTED_YET
    }
    assert not missing, f"not exported by stratacache.metrics.prometheus: {sorted(missing)}"


def test_the_allowlist_is_still_needed(exported: frozenset[str]) -> None:
    used = {name for _, expr in _all_exprs() for name in _names(expr)}
    assert used >= NOT_EXPORTED_YET, "an allowlisted name is no longer queried: drop it from NOT_EXPORTED_YET"
    assert not NOT_EXPORTED_YET & exported, "an allowlisted name is exported now: drop it from NOT_EXPORTED_YET"


def test_every_recording_rule_used_is_defined() -> None:
    recorded = {r["record"] for r in _rules() if "record" in r}
    undefined = {
        (where, name) for where, expr in _all_exprs() for name in _names(expr) if ":" in name and name not in recorded
    }
    assert not undefined, f"recording rules used but not defined in {RULES.name}: {sorted(undefined)}"


def test_every_alert_has_a_severity_a_summary_and_a_description() -> None:
    for rule in _rules():
        if "alert" in rule:
            assert rule.get("severity") in {"critical", "warning", "info"}, rule["alert"]
            assert "{{ $labels.namespace }}" in rule.get("summary", ""), rule["alert"]
            assert rule.get("description"), rule["alert"]


def _slug(heading: str, seen: dict[str, int]) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
    n = seen.get(slug, 0)
    seen[slug] = n + 1
    return f"{slug}-{n}" if n else slug


def _anchors() -> set[str]:
    seen: dict[str, int] = {}
    anchors, fenced = set(), False
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)):
            anchors.add(_slug(heading.group(1), seen))
    return anchors


def test_slugs_are_githubs() -> None:
    seen: dict[str, int] = {}
    assert _slug("Redis unreachable, breaker open", seen) == "redis-unreachable-breaker-open"
    assert _slug("L1 near its byte bound", seen) == "l1-near-its-byte-bound"
    assert _slug("`redis.reachable` fails", seen) == "redisreachable-fails"
    assert _slug("Load errors", seen) == "load-errors"
    assert _slug("Load errors", seen) == "load-errors-1"


def test_every_alert_links_to_a_runbook_section() -> None:
    anchors = _anchors()
    for rule in _rules():
        if "alert" not in rule:
            continue
        url = rule.get("runbook_url", "")
        page, _, anchor = url.partition("#")
        assert page.endswith("docs/runbook.md"), (rule["alert"], url)
        assert anchor in anchors, f"{rule['alert']}: no heading of docs/runbook.md has the anchor #{anchor}"
