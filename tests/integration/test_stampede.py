"""Stampede control across processes: one loader per key per cluster (LoadPolicy.lease_wait), on Redis and SQLite.

Each scenario runs 4 worker processes (spawn) that start together on a barrier. Loader calls are counted in
shared memory. Clocks are FakeClocks advanced in step by every process, so "expiring together" needs no sleep;
the loaders take 200 ms of (simulated) database time, which is what makes the misses overlap.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import uuid
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path

PROCESSES = 4
TASKS = 250  # per process: 1,000 concurrent misses in all
LOAD_SECONDS = 0.2
LEASE_HOLD_SECONDS = 1.0  # the one-key scenario's load, once every process is asking


def _tier(spec: tuple[str, str]) -> Any:
    from stratacache import RedisTier, SQLiteTier

    kind, where = spec
    if kind == "redis":
        # generous budgets: 1,000 tasks in 4 processes open their connections at once on a 2-core machine
        return RedisTier(where, prefix="stampede:", timeout=2.0, connect_timeout=2.0)
    return SQLiteTier(where)


def _one_key_worker(spec: tuple[str, str], ns: str, barrier: Any, calls: Any, out: Any, started: Any) -> None:  # noqa: PLR0917
    from stratacache import AsyncCache, LoadPolicy, MemoryTier

    async def load() -> str:
        with calls.get_lock():
            calls.value += 1
        # The database's time, and long enough that every process is asking while it runs: on a loaded machine a
        # process can reach its first get_or_load after a 200 ms load has finished, and then rightly not wait.
        while started.value < PROCESSES:  # noqa: ASYNC110 - a value shared between processes, not an Event
            await asyncio.sleep(0.01)
        # "started" means the tasks were scheduled; on a loaded machine their first round trip (a connection, the
        # L2 miss, the lease claim) can take a while more: hold the lease long enough for it
        await asyncio.sleep(LEASE_HOLD_SECONDS)
        return "value"

    async def main() -> None:
        policy = LoadPolicy(lease_wait=30)
        async with AsyncCache(MemoryTier(), _tier(spec), namespace=ns, policy=policy) as cache:
            barrier.wait()
            tasks = [asyncio.ensure_future(cache.get_or_load("hot", load)) for _ in range(TASKS)]
            await asyncio.sleep(0.05)  # every task has made its first request (a miss, then the lease)
            with started.get_lock():
                started.value += 1
            results = await asyncio.gather(*tasks)
            out.put((results.count("value"), cache.stats().lock_waits))

    asyncio.run(main())


def _hot_keys_worker(spec: tuple[str, str], ns: str, barrier: Any, calls: Any, out: Any, started: Any) -> None:  # noqa: PLR0917
    from stratacache import AsyncCache, LoadPolicy, MemoryTier
    from stratacache.testing import FakeClock

    clock = FakeClock()

    async def load() -> int:
        with calls.get_lock():
            calls.value += 1
        await asyncio.sleep(LOAD_SECONDS)
        return 1

    async def main() -> None:
        policy = LoadPolicy(lease_wait=30)
        async with AsyncCache(MemoryTier(), _tier(spec), namespace=ns, policy=policy, clock=clock, ttl=60) as cache:
            keys = [f"k{i}" for i in range(100)]
            barrier.wait()
            await asyncio.gather(*(cache.get_or_load(k, load) for k in keys))
            barrier.wait()
            filled = calls.value  # every process has filled: the loads of the first round
            clock.advance(61)  # every key expires at once, in every process
            barrier.wait()
            got = await asyncio.gather(*(cache.get_or_load(k, load) for k in keys for _ in range(3)))
            out.put((sum(got), filled))

    asyncio.run(main())


def _run(worker: Any, spec: tuple[str, str]) -> tuple[int, list[tuple[int, int]]]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES, timeout=60)
    calls = ctx.Value("i", 0)
    started = ctx.Value("i", 0)
    out = ctx.Queue()
    ns = f"stampede-{uuid.uuid4().hex[:8]}"
    procs = [ctx.Process(target=worker, args=(spec, ns, barrier, calls, out, started)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    results = [out.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return calls.value, results


@pytest.mark.slow
def test_a_thousand_concurrent_misses_in_four_processes_make_one_load_redis(redis_url: str) -> None:
    _check_one_load(("redis", redis_url))


@pytest.mark.slow
def test_a_thousand_concurrent_misses_in_four_processes_make_one_load_sqlite(tmp_path: Path) -> None:
    _check_one_load(("sqlite", str(tmp_path / "shared.db")))


@pytest.mark.slow
def test_a_hundred_hot_keys_expiring_together_load_about_once_each_redis(redis_url: str) -> None:
    _check_hot_keys(("redis", redis_url))


@pytest.mark.slow
def test_a_hundred_hot_keys_expiring_together_load_about_once_each_sqlite(tmp_path: Path) -> None:
    _check_hot_keys(("sqlite", str(tmp_path / "shared.db")))


def _check_one_load(spec: tuple[str, str]) -> None:
    calls, results = _run(_one_key_worker, spec)
    assert [served for served, _ in results] == [TASKS] * PROCESSES  # everyone got the value
    assert calls == 1, f"{calls} loader calls for one key"
    assert sum(waits for _, waits in results) >= PROCESSES - 1  # the others waited on the lease


def _check_hot_keys(spec: tuple[str, str]) -> None:
    calls, results = _run(_hot_keys_worker, spec)
    assert [total for total, _ in results] == [300] * PROCESSES
    # Without the lease every process would load every key: 400 calls. A claim that fails under load (SQLite busy
    # on a saturated 2-core runner: 108 seen once in six runs) loads without the lease, by design, so the bound
    # leaves room for a few of those while still proving the stampede is held to about one load per key.
    first = results[0][1]
    assert 100 <= first <= 115, f"{first} loader calls to fill 100 keys from 4 processes"
    refill = calls - first
    assert 100 <= refill <= 115, f"{refill} loader calls for 100 hot keys expiring together in 4 processes"
