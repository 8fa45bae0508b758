"""Scenario 5: XFetch (``early_refresh``) and ``refresh_ahead`` against plain TTL on one hot key under steady load.

``THREADS`` threads call ``get_or_load("hot", loader)`` in a loop (1 ms apart) for the run's duration; the entry
lives ``TTL`` seconds and the loader takes ``LOAD`` seconds (an ``Event`` wait: the database's time). A caller
**blocked on a load** is one whose call took at least half the load time: it missed at expiry and waited for a
loader (its own or the one it joined). With plain TTL every expiry blocks every thread; with XFetch
(``LoadPolicy(early_refresh=1.0)``, Vattani et al.) or ``refresh_ahead=0.8`` a hit shortly before expiry refreshes
in the background, so the number must drop to ~0. Figures per variant: calls, blocked callers, loads, background
refreshes, p50/p99/max call latency. Bounds: plain blocks at least once per expiry (the load is real); XFetch
and refresh-ahead block at most 1% of plain's count (and at most 2 callers: ~0).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from benchmarks.faults.common import Result, latency_summary, pause
from stratacache import Cache, LoadPolicy, MemoryTier

THREADS = 8
TTL = 1.0
LOAD = 0.05
VARIANTS: dict[str, LoadPolicy | None] = {
    "plain TTL": None,
    "XFetch (early_refresh=1.0)": LoadPolicy(early_refresh=1.0),
    "refresh_ahead=0.8": LoadPolicy(refresh_ahead=0.8),
}


def _one(policy: LoadPolicy | None, duration: float) -> dict[str, Any]:
    version = [0]

    def loader() -> int:
        pause(LOAD)
        version[0] += 1
        return version[0]

    latencies: list[list[float]] = [[] for _ in range(THREADS)]
    start = threading.Barrier(THREADS + 1)
    with Cache(MemoryTier(), namespace="xfetch", ttl=TTL, policy=policy) as cache:
        cache.get_or_load("hot", loader)
        deadline = [0.0]

        def work(mine: list[float]) -> None:
            start.wait()
            while time.monotonic() < deadline[0]:
                t0 = time.monotonic()
                cache.get_or_load("hot", loader)
                mine.append(time.monotonic() - t0)
                pause(0.001)

        threads = [threading.Thread(target=work, args=(lat,), daemon=True) for lat in latencies]
        for t in threads:
            t.start()
        deadline[0] = time.monotonic() + duration
        start.wait()
        for t in threads:
            t.join(duration + 30)
        stats = cache.stats()
    every = [x for lat in latencies for x in lat]
    return {
        "calls": len(every),
        "blocked_callers": sum(x >= LOAD / 2 for x in every),
        "expiry_periods": int(duration / TTL),
        "loads": stats.loads,
        "refreshes": stats.refreshes,
        "coalesced": stats.coalesced,
        "latency": latency_summary(every),
    }


def run(*, quick: bool) -> list[Result]:
    duration = 5.0 if quick else 15.0
    result = Result("5", "XFetch vs plain TTL: callers blocked at expiry (hot key)")
    result.params.update({"threads": THREADS, "ttl_s": TTL, "load_s": LOAD, "duration_s": duration, "tier": "memory"})
    for name, policy in VARIANTS.items():
        result.figures[name] = _one(policy, duration)
    plain = result.figures["plain TTL"]["blocked_callers"]
    periods = result.figures["plain TTL"]["expiry_periods"]
    result.check(
        f"plain TTL: callers blocked on a load ({periods} expiries)", plain, f">= {periods - 1}", plain >= periods - 1
    )
    for name in list(VARIANTS)[1:]:
        f = result.figures[name]
        bound = max(2, plain // 100)
        result.check(
            f"{name}: callers blocked on a load",
            f["blocked_callers"],
            f"<= {bound} (~0)",
            f["blocked_callers"] <= bound,
        )
    for name, f in result.figures.items():
        result.info(
            f"{name}: loads / background refreshes / calls", f"{f['loads']} / {f['refreshes']} / {f['calls']:,}"
        )
    return [result]
