"""Scenario 4: cross-process L1 invalidation latency, from a writer's commit to the new version seen in 2 workers.

Two worker processes (``multiprocessing``, spawn) each open ``Cache(MemoryTier(), RedisTier(url))`` and read every
key once, so each holds all keys in its L1. The parent writes ``rate`` changes per second through its own
Redis-backed cache: ``cache.set(key, version)`` with ``version`` growing per key, round-robin over the keys.

How a drop is detected: each worker re-reads all its keys in a tight loop (``cache.get``; a pause of 0.2 ms
between rounds leaves the CPU to the backplane thread and the writer). A read is an L1 hit until the backplane
message of a change has been applied by ``poll()`` (run before every read); then it misses, reads Redis and
returns the new version, at which moment the worker notes ``(key, version, time.monotonic())``.

Latency of a change = first time a worker saw that version or a newer one - the time taken just **before** the
writer's ``set`` was called. It is an upper bound of commit→drop: it includes the writer's own round trip, the
publication, the worker's wait for the GIL, at most one round of the loop and the re-read from Redis. A version
overtaken by the next one before the worker saw it counts with the time the newer one was seen (again an upper
bound). ``time.monotonic()`` is ``CLOCK_MONOTONIC`` on Linux: one clock for every process on the host.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from typing import Any

from benchmarks.faults.common import Result, latency_summary, pause, prefix, redis_server
from stratacache import Cache, MemoryTier, RedisTier

WORKERS = 2
KEYS = 100
RATE = 500  # changes per second
HEARTBEAT = 0.2
P99_BOUND = 0.050
MAX_BOUND = 1.0


def _worker(url: str, pfx: str, keys: list[str], *, ready: Any, stop: Any, out: Any) -> None:
    """One worker process: hold ``keys`` in L1, re-read them until ``stop``, report what became visible when."""
    cache = Cache(MemoryTier(), RedisTier(url, prefix=pfx, heartbeat=HEARTBEAT), namespace="xproc")
    with cache:
        last = {k: cache.get(k) for k in keys}
        l1: Any = cache._l1
        hits0 = l1.counters.hits
        for k in keys:
            cache.get(k)
        warm = l1.counters.hits - hits0  # == len(keys): every key is in L1
        ready.set()
        seen: list[tuple[str, int, float]] = []
        rounds = 0
        while not stop.is_set():
            for k in keys:
                v = cache.get(k)
                if v is not None and v > last[k]:
                    last[k] = v
                    seen.append((k, v, time.monotonic()))
            rounds += 1
            time.sleep(0.0002)
        link: Any = cache._lower[0]._link
        out.put(
            {
                "seen": seen,
                "rounds": rounds,
                "warm_l1_hits": warm,
                "l1_hits": l1.counters.hits,
                "l1_misses": l1.counters.misses,
                "backplane_losses": link.losses,
                "backplane_received": link.received,
            }
        )


def run(*, quick: bool) -> list[Result]:
    changes = 2_000 if quick else 10_000
    result = Result("4", "Cross-process L1 invalidation latency")
    result.params.update(
        {"workers": WORKERS, "keys": KEYS, "rate_per_s": RATE, "changes": changes, "heartbeat": HEARTBEAT}
    )
    pfx = prefix()
    keys = [f"row:{i}" for i in range(KEYS)]
    ctx = multiprocessing.get_context("spawn")
    with redis_server() as server:
        writer = Cache(RedisTier(server.url, prefix=pfx, heartbeat=HEARTBEAT), namespace="xproc")
        with writer:
            version = dict.fromkeys(keys, 0)
            writer.set_many(version)
            stop = ctx.Event()
            out = ctx.Queue()
            readies = [ctx.Event() for _ in range(WORKERS)]
            procs = [
                ctx.Process(
                    target=_worker,
                    args=(server.url, pfx, keys),
                    kwargs={"ready": r, "stop": stop, "out": out},
                    daemon=True,
                )
                for r in readies
            ]
            for p in procs:
                p.start()
            reports: list[dict[str, Any]] = []
            commits: list[tuple[str, int, float, float]] = []
            try:
                for r in readies:
                    if not r.wait(30.0):
                        raise RuntimeError("a worker did not start within 30 s")
                pause(0.2)
                t0 = time.monotonic()
                for i in range(changes):
                    key = keys[i % KEYS]
                    version[key] += 1
                    before = time.monotonic()
                    writer.set(key, version[key])
                    commits.append((key, version[key], before, time.monotonic()))
                    delay = t0 + (i + 1) / RATE - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                elapsed = time.monotonic() - t0
                pause(MAX_BOUND + 0.5)  # anything later than the max bound is late anyway
            finally:
                stop.set()
                for _ in procs:
                    try:
                        reports.append(out.get(timeout=30.0))
                    except queue.Empty:
                        break
                for p in procs:
                    p.join(10.0)
                    if p.is_alive():
                        p.kill()
    if len(reports) != WORKERS:
        result.notes.append(f"only {len(reports)} of {WORKERS} workers reported")
    latencies: list[float] = []
    missed = 0
    per_worker = []
    for rep in reports:
        by_key: dict[str, list[tuple[int, float]]] = {}
        for k, v, t in rep["seen"]:
            by_key.setdefault(k, []).append((v, t))
        mine: list[float] = []
        unseen = 0
        for key, v, before, _after in commits:
            t_seen = next((t for seen_v, t in by_key.get(key, ()) if seen_v >= v), None)
            if t_seen is None:
                unseen += 1
            else:
                mine.append(t_seen - before)
        latencies.extend(mine)
        missed += unseen
        per_worker.append(
            {"latency": latency_summary(mine)} | {k: v for k, v in rep.items() if k != "seen"} | {"missed": unseen}
        )
    set_seconds = [after - before for _, _, before, after in commits]
    lat = latency_summary(latencies)
    result.figures.update(
        {
            "achieved_rate_per_s": round(changes / elapsed, 1),
            "commit_to_visible": lat,
            "versions_never_seen": missed,
            "writer_set_latency": latency_summary(set_seconds),
            "workers": per_worker,
        }
    )
    result.info("commit→drop p50 (ms)", lat["p50_ms"])
    p99, worst = lat["p99_ms"], lat["max_ms"]
    result.check("commit→drop p99 (ms)", p99, f"< {P99_BOUND * 1000:.0f}", p99 is not None and p99 < P99_BOUND * 1000)
    result.check("commit→drop max (ms)", worst, f"< {MAX_BOUND * 1000:.0f}", worst is not None and worst < 1000)
    result.check("changes never seen by a worker", missed, "= 0", missed == 0 and len(reports) == WORKERS)
    result.info("changes/s achieved", result.figures["achieved_rate_per_s"])
    return [result]
