"""Scenario 4: stampede control, re-run from ``tests/integration/test_stampede.py`` (its workers, imported).

4 processes (spawn) x 250 asyncio tasks miss one key at once under ``LoadPolicy(lease_wait=30)``: loader calls
(bound 1) and lease waits; then 100 hot keys filled and expiring together (FakeClocks advanced in step): loader
calls to fill and to refill (bounds 100-105 each). Over a private Redis and over an SQLite file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tests.integration import test_stampede as st

from benchmarks.faults.common import Result, redis_server


def run(*, quick: bool) -> list[Result]:
    del quick  # the scenario is bounded by its loaders (200 ms of simulated database time), not by a duration
    result = Result("4", "Stampede: one loader per key per cluster (lease_wait)")
    result.params.update({"processes": st.PROCESSES, "tasks_per_process": st.TASKS, "load_s": st.LOAD_SECONDS})
    with tempfile.TemporaryDirectory(prefix="consistency-") as tmp, redis_server() as server:
        specs: dict[str, Any] = {
            "Redis": lambda n: ("redis", server.url),
            "SQLite": lambda n: ("sqlite", str(Path(tmp) / f"stampede{n}.db")),
        }
        for name, spec in specs.items():
            calls, results = st._run(st._one_key_worker, spec(1))
            waits = sum(w for _, w in results)
            served = sum(s for s, _ in results)
            result.figures[f"{name} one key"] = {"loader_calls": calls, "lease_waits": waits, "served": served}
            total = st.PROCESSES * st.TASKS
            result.check(f"{name}: loader calls for {total:,} concurrent misses", calls, "1", calls == 1)
            result.check(f"{name}: callers served", served, f"{total:,}", served == total)
            calls, results = st._run(st._hot_keys_worker, spec(2))
            first = results[0][1]
            refill = calls - first
            result.figures[f"{name} 100 hot keys"] = {"fill_calls": first, "refill_calls": refill}
            result.check(f"{name}: loader calls to fill 100 keys", first, "100-105", 100 <= first <= 105)
            result.check(f"{name}: loader calls, 100 keys expiring together", refill, "100-105", 100 <= refill <= 105)
    return [result]
