"""Scenario 6: fail-safe. A hot key's loader raises for 30 s; callers keep the stale value, attempts are throttled.

Time is a ``FakeClock`` shared by the cache and the scenario, so 30 s of outage take milliseconds and every figure
is exact. Per configuration (memory+SQLite, memory+Redis):

- ``Cache(MemoryTier(), L2, ttl=10, clock=clock, policy=LoadPolicy(fail_safe=120, fail_safe_throttle=5))``;
  the hot key is loaded once (version 1), then time moves to its expiry;
- for 30 s of fake time the loader raises; every 50 ms (fake) ``CALLERS`` callers call ``get_or_load`` on the
  hot key. Figures: exceptions raised to callers (bound 0), callers served the stale version 1 (bound: all),
  loader attempts (bound: ``ceil(30 / fail_safe_throttle) + 1`` = 7, against one per call without throttling);
- then the loader recovers (version 2): figure, the fake time until the first caller gets version 2 (bound:
  ``fail_safe_throttle``), and every later caller gets it.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.faults.common import Result, prefix, redis_server
from stratacache import Cache, LoadPolicy, MemoryTier, RedisTier, SQLiteTier
from stratacache.testing import FakeClock

CALLERS = 4
STEP = 0.05
OUTAGE = 30.0
TTL = 10.0
THROTTLE = 5.0


def _one(tier: Any) -> dict[str, Any]:
    clock = FakeClock()
    policy = LoadPolicy(fail_safe=120.0, fail_safe_throttle=THROTTLE)
    state = {"failing": False, "version": 1, "attempts": 0}

    def loader() -> int:
        state["attempts"] += 1
        if state["failing"]:
            raise ConnectionError("the database is down")
        return state["version"]

    figures: dict[str, Any] = {}
    with Cache(MemoryTier(), tier, namespace="failsafe", ttl=TTL, clock=clock, policy=policy) as cache:
        assert cache.get_or_load("hot", loader) == 1
        clock.advance(TTL)  # the hot key has just expired
        state.update(failing=True, attempts=0)
        calls = errors = stale = 0
        elapsed = 0.0
        while elapsed < OUTAGE:
            for _ in range(CALLERS):
                calls += 1
                try:
                    stale += cache.get_or_load("hot", loader) == 1
                except Exception:
                    errors += 1
            clock.advance(STEP)
            elapsed += STEP
        figures["outage"] = {
            "calls": calls,
            "errors_raised": errors,
            "served_stale": stale,
            "loader_attempts": state["attempts"],
            "stale_served_counter": cache.stats().stale_served,
        }
        state.update(failing=False, version=2, attempts=0)
        until_fresh = None
        after = fresh_after = 0
        elapsed = 0.0
        while elapsed < 2 * THROTTLE:
            for _ in range(CALLERS):
                v = cache.get_or_load("hot", loader)
                if v == 2 and until_fresh is None:
                    until_fresh = elapsed
                if until_fresh is not None:
                    after += 1
                    fresh_after += v == 2
            clock.advance(STEP)
            elapsed += STEP
        figures["recovery"] = {
            "seconds_to_fresh": until_fresh,
            "calls_after_first_fresh": after,
            "fresh_after_first_fresh": fresh_after,
            "loader_attempts": state["attempts"],
        }
    return figures


def run(*, quick: bool) -> list[Result]:
    del quick  # fake time: the full scenario takes well under a second per configuration
    result = Result("6", "Fail-safe: loader failing for 30 s on a hot key")
    result.params.update(
        {
            "callers_per_step": CALLERS,
            "step_s": STEP,
            "outage_s": OUTAGE,
            "ttl_s": TTL,
            "fail_safe": 120.0,
            "fail_safe_throttle": THROTTLE,
            "clock": "FakeClock",
        }
    )
    bound = math.ceil(OUTAGE / THROTTLE) + 1
    with tempfile.TemporaryDirectory(prefix="consistency-") as tmp, redis_server() as server:
        configs = {
            "memory+SQLite": lambda: SQLiteTier(Path(tmp) / "fs.db"),
            "memory+Redis": lambda: RedisTier(server.url, prefix=prefix(), timeout=2.0, connect_timeout=2.0),
        }
        for name, tier in configs.items():
            f = _one(tier())
            result.figures[name] = f
            out, rec = f["outage"], f["recovery"]
            result.check(
                f"{name}: exceptions raised to {out['calls']:,} callers",
                out["errors_raised"],
                "0",
                out["errors_raised"] == 0,
            )
            result.check(
                f"{name}: callers served the stale value",
                out["served_stale"],
                f"{out['calls']:,}",
                out["served_stale"] == out["calls"],
            )
            result.check(
                f"{name}: loader attempts in 30 s (unthrottled: {out['calls']:,})",
                out["loader_attempts"],
                f"<= {bound}",
                out["loader_attempts"] <= bound,
            )
            secs = rec["seconds_to_fresh"]
            result.check(
                f"{name}: seconds until the fresh value after recovery",
                secs,
                f"<= {THROTTLE:g}",
                secs is not None and secs <= THROTTLE,
            )
            result.check(
                f"{name}: later callers served the fresh value",
                rec["fresh_after_first_fresh"],
                f"{rec['calls_after_first_fresh']:,}",
                rec["fresh_after_first_fresh"] == rec["calls_after_first_fresh"],
            )
    return [result]
