"""Scenario 1: the stale-fill race, forced 1,000 times per tier configuration (quick: 200).

The race and its check are ``tests/integration/test_forced_interleavings.py``'s, imported: a reader's loader reads
version ``v`` and stops at a hook (an ``Event``) while a writer commits ``v + 1`` and invalidates the key (delete,
set or tag, through the same cache or another one over the same shared tier; plain, ``fail_safe`` and
``lease_wait`` load paths in rotation); afterwards no cache over the configuration may return ``v``. Bound: 0
stale entries per configuration.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tests.integration import test_forced_interleavings as fi

from benchmarks.faults.common import Result, redis_server

if TYPE_CHECKING:
    from collections.abc import Callable


def _count(make: Callable[[], fi.Setup], runs: int) -> tuple[int, float, list[list[str]]]:
    setup = make()
    db: dict[str, int] = {}
    stale = 0
    examples: list[list[str]] = []
    t0 = time.monotonic()
    try:
        for i in range(runs):
            found, where = fi._race_once(setup, i, db)
            stale += found
            if where and len(examples) < 5:
                examples.append(where)
    finally:
        for cache in setup.all():
            cache.close()
    return stale, time.monotonic() - t0, examples


def run(*, quick: bool) -> list[Result]:
    runs = 200 if quick else 1000
    result = Result("1", "Forced stale-fill interleavings")
    result.params.update(
        {"runs_per_config": runs, "invalidations": list(fi.KINDS), "policies": [str(p) for p in fi.POLICIES]}
    )
    with tempfile.TemporaryDirectory(prefix="consistency-") as tmp, redis_server() as server:
        configs: dict[str, Callable[[], fi.Setup]] = {
            "memory": fi._memory,
            "SQLite": lambda: fi._sqlite(Path(tmp) / "a.db", l1=False),
            "memory+SQLite": lambda: fi._sqlite(Path(tmp) / "b.db", l1=True),
            "Redis": lambda: fi._redis(server.url, l1=False),
            "memory+Redis": lambda: fi._redis(server.url, l1=True),
        }
        for name, make in configs.items():
            stale, seconds, examples = _count(make, runs)
            result.figures[name] = {"runs": runs, "stale_entries": stale, "seconds": round(seconds, 2)}
            if examples:
                result.figures[name]["examples"] = examples
            result.check(f"{name}: stale entries after {runs:,} races", stale, "0", stale == 0)
    return [result]
