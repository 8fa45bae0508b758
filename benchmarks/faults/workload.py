"""The load of scenarios 1-3: reader threads doing ``get_or_load`` over a versioned source, one writer, a monitor.

- The **source** is a dict ``{key: version}``; a loader sleeps ``loader_seconds`` (the query) and returns the
  key's current version.
- **Readers** (``threads`` of them) pick a key uniformly, time one ``get_or_load`` and record it in a
  ``staleness.History``; then pause ``read_pause`` (paced, so latencies measure the cache, not a GIL convoy).
  A call counts as a hit when this caller's loader did not run.
- The **writer** commits ``version + 1`` of a random key, then calls ``cache.delete(key)``, then records the
  invalidation as done; every ``write_pause``.
- The **monitor** samples the tier's breaker state and backplane link every millisecond and keeps the changes.

Everything runs in one ``Cache(MemoryTier(), RedisTier(url))``: the staleness rule ("no read returns a version
older than one whose invalidation completed before the read started") holds for one cache; across processes the
backplane's delay is measured on its own (scenario 4).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.faults.common import Result, latency_summary, ms, pause, prefix
from stratacache import Cache, MemoryTier, RedisTier
from stratacache.testing import staleness

BUCKET = 0.1  # seconds: hit ratio is computed per bucket after the fault ends
RECOVERED = 0.9  # a bucket whose hit ratio reaches this share of the baseline counts as recovered


@dataclass(frozen=True)
class Options:
    threads: int = 8
    keys: int = 200
    read_pause: float = 0.002
    write_pause: float = 0.005
    loader_seconds: float = 0.001
    timeout: float = 0.05
    heartbeat: float = 0.2
    breaker_open_for: float = 0.5

    @property
    def latency_bound(self) -> float:
        """The bound on one call during an outage: the op timeout + 20 ms."""
        return self.timeout + 0.020


class Workload:
    """Readers, a writer and a monitor over one cache on ``url`` (see the module docstring)."""

    def __init__(self, url: str, opts: Options, *, seed: int = 1) -> None:
        self.opts = opts
        tier = RedisTier(
            url,
            prefix=prefix(),
            timeout=opts.timeout,
            connect_timeout=opts.timeout,
            heartbeat=opts.heartbeat,
            breaker_open_for=opts.breaker_open_for,
        )
        self.cache = Cache(MemoryTier(max_entries=10_000), tier, namespace="faults")
        self.store: Any = self.cache._lower[0]
        self.keys = [f"row:{i}" for i in range(opts.keys)]
        self.db = dict.fromkeys(self.keys, 0)
        self.history = staleness.History(max_examples=5)
        self.calls: list[tuple[float, float, bool]] = []  # (start, seconds, hit), appended from every reader
        self.errors: list[str] = []
        self.writer_errors: list[str] = []
        self.writes = 0
        self.changes: list[tuple[float, str, bool]] = []  # (when, breaker state, link lost)
        self._seed = seed
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ threads

    def start(self) -> None:
        targets = [(self._reader, i) for i in range(self.opts.threads)] + [(self._writer, -1), (self._monitor, -2)]
        for target, i in targets:
            t = threading.Thread(target=target, args=(i,), name=f"faults-{target.__name__}{i}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10.0)
        self.cache.close()

    def _reader(self, i: int) -> None:
        rng = random.Random(self._seed * 1000 + i)
        cache, db, history, opts = self.cache, self.db, self.history, self.opts
        while not self._stop.is_set():
            key = rng.choice(self.keys)
            loaded: list[int] = []

            def load(key: str = key, loaded: list[int] = loaded) -> int:
                loaded.append(1)
                time.sleep(opts.loader_seconds)
                return db[key]

            t0 = time.monotonic()
            try:
                with history.reading(key) as r:
                    r.version = cache.get_or_load(key, load)
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            t1 = time.monotonic()
            self.calls.append((t0, t1 - t0, not loaded))
            pause(opts.read_pause)

    def _writer(self, _i: int) -> None:
        rng = random.Random(self._seed)
        while not self._stop.is_set():
            key = rng.choice(self.keys)
            self.db[key] += 1  # the commit (one writer: no lost update)
            version = self.db[key]
            self.history.write_committed(key, version)
            try:
                self.cache.delete(key)
            except Exception as exc:  # the invalidation failed: it is not recorded as done
                self.writer_errors.append(f"{type(exc).__name__}: {exc}")
            else:
                self.history.invalidation_done(key, version)
            self.writes += 1
            pause(self.opts.write_pause)

    def _monitor(self, _i: int) -> None:
        store = self.store
        link = store._link
        last: tuple[str, bool] | None = None
        while not self._stop.is_set():
            now = (store.breaker.state, bool(link.lost) if link is not None else False)
            if now != last:
                self.changes.append((time.monotonic(), *now))
                last = now
            pause(0.001)

    # ------------------------------------------------------------------ figures

    def _state_at(self, t: float) -> tuple[str, bool]:
        state: tuple[str, bool] = ("closed", False)
        for when, breaker, lost in self.changes:
            if when > t:
                break
            state = (breaker, lost)
        return state

    def _settled_after(self, t: float, *, breaker: bool) -> float | None:
        """Seconds from ``t`` until the breaker closed (or the link came back) for good; None if it never did."""
        good = (lambda c: c[1] == "closed") if breaker else (lambda c: not c[2])
        settled: float | None = t if good((t, *self._state_at(t))) else None
        for c in self.changes:
            if c[0] < t:
                continue
            if not good(c):
                settled = None
            elif settled is None:
                settled = c[0]
        return None if settled is None else settled - t

    def _opened_after(self, t: float) -> float | None:
        return next((c[0] - t for c in self.changes if c[0] >= t and c[1] == "open"), None)

    def _hit_ratio(self, lo: float, hi: float) -> float | None:
        window = [hit for start, _, hit in self.calls if lo <= start < hi]
        return sum(window) / len(window) if window else None

    def report(
        self, result: Result, *, warm: float, fault: float, healed: float, end: float, bound_note: str = ""
    ) -> None:
        """Fill ``result`` with the figures and checks of one fault between ``fault`` and ``healed``."""
        opts = self.opts
        result.params.update(asdict(opts))
        during = [s for start, s, _ in self.calls if start < healed and start + s > fault]
        lat = latency_summary(during)
        baseline = self._hit_ratio(warm, fault)
        closed_after = self._settled_after(healed, breaker=True)
        link_after = self._settled_after(healed, breaker=False)
        recovered_after = None
        # recovered: back to normal operation (breaker closed, link back, whose resubscription flushed L1),
        # and the hit ratio of a bucket back within RECOVERED of the baseline
        t = healed + max(closed_after or 0.0, link_after or 0.0)
        while t + BUCKET <= end:
            ratio = self._hit_ratio(t, t + BUCKET)
            if baseline and ratio is not None and ratio >= RECOVERED * baseline:
                recovered_after = t + BUCKET - healed
                break
            t += BUCKET
        report = self.history.check()
        result.figures.update(
            {
                "reads": len(self.calls),
                "read_exceptions": len(self.errors),
                "read_exception_examples": sorted(set(self.errors))[:5],
                "writes": self.writes,
                "writer_exceptions": len(self.writer_errors),
                "writer_exception_examples": sorted(set(self.writer_errors))[:5],
                "outage_seconds": round(healed - fault, 3),
                "latency_during_fault": lat,
                "latency_after_fault": latency_summary([s for start, s, _ in self.calls if start >= healed]),
                "breaker_opened_after_ms": ms(self._opened_after(fault)),
                "breaker_closed_after_heal_ms": ms(closed_after),
                "backplane_back_after_heal_ms": ms(link_after),
                "hit_ratio_before": None if baseline is None else round(baseline, 3),
                "hit_ratio_during": _round(self._hit_ratio(fault, healed)),
                "hit_ratio_recovered_after_ms": ms(recovered_after),
                "stale_reads": report.stale_reads,
                "stale_examples": [repr(e) for e in report.examples[:3]],
                "max_staleness_ms": ms(report.max_staleness),
                "breaker_and_link_changes": [
                    (round(c[0] - fault, 4), c[1], c[2]) for c in self.changes if c[0] >= warm
                ][:200],
            }
        )
        bound = opts.latency_bound
        result.check("read exceptions", len(self.errors), "= 0", not self.errors)
        for name in ("p50", "p99", "max"):
            value = lat[f"{name}_ms"]
            ok = value is not None and value <= bound * 1000
            result.check(f"latency {name} during fault (ms)", value, f"<= {bound * 1000:.0f}{bound_note}", ok)
        result.check("stale reads", report.stale_reads, "= 0", report.ok)
        opened = result.figures["breaker_opened_after_ms"]
        result.check("breaker opened after (ms)", opened, "opens during the fault", opened is not None)
        window = f"recovers within the {end - healed:.1f} s observed"
        closed = result.figures["breaker_closed_after_heal_ms"]
        result.check("breaker closed after heal (ms)", closed, window, closed is not None)
        result.check(
            "hit ratio recovered after heal (ms)",
            result.figures["hit_ratio_recovered_after_ms"],
            window,
            recovered_after is not None,
        )
        result.info("hit ratio before / during fault", f"{_round(baseline)} / {result.figures['hit_ratio_during']}")


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
