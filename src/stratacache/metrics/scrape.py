"""Read stratacache's counters back from ``/metrics`` endpoints (``stratacache stats --metrics URL``).

Live hit ratios and load counts live in the processes that serve traffic, not in the shared tiers. Each process
exports them (:mod:`stratacache.metrics.prometheus`); this module scrapes one or more such endpoints, sums the
counters of the same namespace and tier across processes, and turns two scrapes into per-second rates.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from stratacache.errors import ConfigError, TierUnavailableError

__all__ = ["ENGINE_FIELDS", "TIER_FIELDS", "Scrape", "fetch", "parse", "scrape"]

TIER_FIELDS = ("hit", "miss", "error", "sets", "evictions", "skipped", "entries", "bytes", "breaker", "backplane")
"""Per (namespace, tier): requests by result, then counters and gauges."""
ENGINE_FIELDS = ("stale", "loads", "load_errors", "coalesced", "lock_waits", "load_timeouts", "refreshes")
"""Per namespace."""

_COUNTERS = {
    "stratacache_loads_total": "loads",
    "stratacache_load_errors_total": "load_errors",
    "stratacache_coalesced_total": "coalesced",
    "stratacache_lock_waits_total": "lock_waits",
    "stratacache_load_timeouts_total": "load_timeouts",
    "stratacache_refreshes_total": "refreshes",
}
_TIER_SAMPLES = {
    "stratacache_sets_total": "sets",
    "stratacache_evictions_total": "evictions",
    "stratacache_skipped_total": "skipped",
    "stratacache_entries": "entries",
    "stratacache_bytes": "bytes",
    "stratacache_breaker_state": "breaker",
    "stratacache_backplane_up": "backplane",
}
_GAUGES = frozenset({"entries", "bytes", "breaker", "backplane"})


@dataclass
class Scrape:
    """Counters of one or more processes, summed per (namespace, tier) and per namespace."""

    at: float
    tiers: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    engine: dict[str, dict[str, float]] = field(default_factory=dict)
    endpoints: int = 1

    def hit_ratio(self, namespace: str, tier: str) -> float | None:
        """``hit / (hit + miss)`` of one tier, ``None`` before any lookup."""
        row = self.tiers.get((namespace, tier), {})
        total = row.get("hit", 0.0) + row.get("miss", 0.0)
        return row.get("hit", 0.0) / total if total else None

    def merge(self, other: Scrape) -> Scrape:
        """Both scrapes summed (gauges too: breaker and backplane become "how many processes say so")."""
        out = Scrape(at=max(self.at, other.at), endpoints=self.endpoints + other.endpoints)
        for src in (self, other):
            for key, row in src.tiers.items():
                dst = out.tiers.setdefault(key, defaultdict(float))
                for name, value in row.items():
                    dst[name] += value
            for ns, row in src.engine.items():
                dst = out.engine.setdefault(ns, defaultdict(float))
                for name, value in row.items():
                    dst[name] += value
        return out

    def rates(self, before: Scrape) -> Scrape:
        """Per-second rates of the counters since ``before`` (gauges keep their current value)."""
        dt = max(self.at - before.at, 1e-9)
        out = Scrape(at=self.at, endpoints=self.endpoints)
        for key, row in self.tiers.items():
            old = before.tiers.get(key, {})
            out.tiers[key] = {n: v if n in _GAUGES else max(v - old.get(n, 0.0), 0.0) / dt for n, v in row.items()}
        for ns, row in self.engine.items():
            old = before.engine.get(ns, {})
            out.engine[ns] = {n: max(v - old.get(n, 0.0), 0.0) / dt for n, v in row.items()}
        return out


def parse(text: str, *, at: float | None = None) -> Scrape:
    """The stratacache counters of one exposition text (other metrics are ignored).

    Raises:
        ValueError: the text is not in the Prometheus exposition format.
    """
    out = Scrape(at=time.time() if at is None else at)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            ns = labels.get("namespace")
            if ns is None or not name.startswith("stratacache_"):
                continue
            tier = labels.get("tier")
            if name == "stratacache_requests_total":
                if tier == "any":
                    out.engine.setdefault(ns, defaultdict(float))["stale"] += value
                elif tier is not None:
                    out.tiers.setdefault((ns, tier), defaultdict(float))[labels.get("result", "?")] += value
            elif name in _TIER_SAMPLES and tier is not None:
                out.tiers.setdefault((ns, tier), defaultdict(float))[_TIER_SAMPLES[name]] += value
            elif name in _COUNTERS:
                out.engine.setdefault(ns, defaultdict(float))[_COUNTERS[name]] += value
    return out


def fetch(url: str, *, timeout: float = 5.0) -> str:
    """GET an exposition text from ``url`` (http or https only).

    Raises:
        ConfigError: the URL is not an http(s) URL.
        TierUnavailableError: the endpoint did not answer with 200 within ``timeout``.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ConfigError(f"metrics URL must be http(s)://host:port/metrics, got {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - scheme checked above
            return str(reply.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise TierUnavailableError(f"cannot scrape {url}: {exc}") from exc


def scrape(urls: list[str], *, timeout: float = 5.0) -> Scrape:
    """Fetch and parse every endpoint, summed.

    Raises:
        ConfigError, TierUnavailableError: as :func:`fetch`; ``ValueError`` wrapped as ConfigError.
    """
    total: Scrape | None = None
    for url in urls:
        try:
            one = parse(fetch(url, timeout=timeout))
        except ValueError as exc:
            raise ConfigError(f"{url} did not answer with Prometheus metrics: {exc}") from exc
        total = one if total is None else total.merge(one)
    if total is None:
        raise ConfigError("no metrics URL given")
    return total
