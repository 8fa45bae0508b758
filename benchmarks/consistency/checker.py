"""Scenario 3: a randomized two-process load, every read checked by ``stratacache.testing.staleness``.

Two worker processes (spawn) share one L2 (an SQLite file, or a private Redis) and one "database": a shared
array of per-key versions (``multiprocessing.Array``). Each process runs ``THREADS`` threads for ``duration``
seconds over ``KEYS`` keys drawn from a Zipf law (s = 1.1, the same hot keys in both processes):

- 70% reads: ``get_or_load(key, loader, tags=[key's tag])``, the loader reading the key's version from the
  database; three reads in four go through the process's full cache (``MemoryTier`` + L2), one in four through
  a cache without L1 over the same L2 (what the L2 serves);
- 30% writes: commit ``version + 1``, then invalidate through the full cache, in rotation ``delete``,
  ``set(key, version)`` or ``invalidate_tags(key's tag)``; the commit and its invalidation hold the key's row
  lock (a ``multiprocessing.Lock`` stripe) so that two ``set`` s of one key land in commit order.

Every read is recorded with its start and end (``time.monotonic``: one clock for every process on Linux), every
write with its commit time and the time its invalidation returned; the parent merges both processes' records
into ``staleness.History`` objects. The rule: a read that *started* after version ``v``'s invalidation completed
(plus a bound ``B``) must not return a version older than ``v``.

The bounds:

- **L2** (reads through the cache without L1): ``B = 0``: a delete or set is one atomic write to the shared
  tier, and a fill is fenced. For tag invalidations over Redis, another process's counter bump is learned from
  the backplane (per-process counter cache): those get the Redis L1 bound below; over SQLite the log is read
  before every operation, so they get ``B = 0`` too.
- **L1, SQLite**: ``B = 0``. The engine polls the SQLite log (``sc_log``, when the WAL header moved) before every
  operation, so a read that starts after the invalidation's commit has applied it.
- **L1, Redis**: ``B`` = the backplane's delivery time, measured in the same run: process 0 sets a probe key
  every 20 ms, process 1 reads it in a loop (0.5 ms apart) from its L1, which keeps the old version until the
  backplane message is applied; delivery = first sight of the new version - the time before the ``set``. ``B`` is
  the largest delivery time observed; the documented max of that delivery (``docs/faults.md``, scenario 4: < 1 s)
  is checked too. The p99 is reported beside the same probe's figure over SQLite, where propagation is 0 by
  construction: that is the probe's own floor (its reader thread's scheduling on a loaded 2-core machine), and
  why the idle-machine p99 < 50 ms of ``docs/faults.md`` is not held as a bound under this load.
"""

from __future__ import annotations

import bisect
import contextlib
import multiprocessing
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.faults.common import Result, latency_summary, pause, prefix, quantile, redis_server
from stratacache.testing import staleness

PROCESSES = 2
THREADS = 4
KEYS = 1000
ZIPF_S = 1.1
READ_SHARE = 0.7
LOCK_STRIPES = 64
PROBE_EVERY = 0.02
KINDS = ("delete", "set", "tag")
DOC_P99 = 0.050
DOC_MAX = 1.0


def _tiers(spec: tuple[str, str, str]) -> tuple[Any, Any]:
    from stratacache import RedisTier, SQLiteTier

    kind, where, pfx = spec
    if kind == "sqlite":
        return SQLiteTier(where, max_bytes=None), SQLiteTier(where, max_bytes=None)
    # budgets far above a loaded 2-core machine's hiccups: this scenario is about coherence, not outages
    opts: dict[str, Any] = {"prefix": pfx, "timeout": 2.0, "connect_timeout": 2.0}
    return RedisTier(where, **opts), RedisTier(where, **opts)


def _worker(  # noqa: PLR0917 - spawn passes the shared objects positionally
    spec: tuple[str, str, str],
    n: int,
    duration: float,
    versions: Any,
    locks: list[Any],
    barrier: Any,
    out: Any,
) -> None:
    from stratacache import Cache, MemoryTier

    rng0 = random.Random(n)
    weights = [1.0 / (r**ZIPF_S) for r in range(1, KEYS + 1)]
    cum: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cum.append(total)
    ids = list(range(KEYS))
    random.Random(7).shuffle(ids)  # the same hot keys in both processes
    l2_tier, full_tier = _tiers(spec)
    full = Cache(MemoryTier(max_entries=10_000), full_tier, namespace="chk", ttl=30)
    l2 = Cache(l2_tier, namespace="chk", ttl=30)
    reads: list[tuple[bool, int, int, float, float]] = []
    writes: list[tuple[int, int, float, float, str]] = []
    errors: list[str] = []
    probe_sent: list[tuple[int, float]] = []
    probe_seen: list[tuple[int, float]] = []
    stop = threading.Event()

    def work(t: int) -> None:
        rng = random.Random(rng0.random() + t)
        mine_r: list[tuple[bool, int, int, float, float]] = []
        mine_w: list[tuple[int, int, float, float, str]] = []
        i = 0
        while not stop.is_set():
            idx = ids[bisect.bisect_left(cum, rng.random() * total)]
            key = f"k{idx}"
            tag = f"t{idx}"
            try:
                if rng.random() < READ_SHARE:
                    i += 1
                    through_l2 = i % 4 == 0
                    cache = l2 if through_l2 else full
                    start = time.monotonic()
                    v = cache.get_or_load(key, lambda idx=idx: versions[idx], tags=[tag])
                    mine_r.append((through_l2, idx, v, start, time.monotonic()))
                else:
                    kind = KINDS[rng.randrange(3)]
                    with locks[idx % LOCK_STRIPES]:
                        with versions.get_lock():
                            versions.get_obj()[idx] += 1
                            v = versions.get_obj()[idx]
                        committed = time.monotonic()
                        if kind == "delete":
                            full.delete(key)
                        elif kind == "set":
                            full.set(key, v, tags=[tag])
                        else:
                            full.invalidate_tags(tag)
                        mine_w.append((idx, v, committed, time.monotonic(), kind))
            except Exception as exc:  # counted, and a failed write is not recorded as done
                errors.append(f"{type(exc).__name__}: {exc}")
        reads.extend(mine_r)
        writes.extend(mine_w)

    def probe_writer() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            t0 = time.monotonic()
            try:
                full.set("probe", k)
            except Exception as exc:
                errors.append(f"probe {type(exc).__name__}: {exc}")
                continue
            probe_sent.append((k, t0))
            pause(PROBE_EVERY)

    def probe_reader() -> None:
        last = 0
        while not stop.is_set():
            try:
                v = full.get("probe")
            except Exception as exc:
                errors.append(f"probe {type(exc).__name__}: {exc}")
                continue
            if v is not None and v > last:
                last = v
                probe_seen.append((v, time.monotonic()))
            pause(0.0005)

    with full, l2:
        full.get("probe")
        barrier.wait()
        threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(THREADS)]
        threads.append(threading.Thread(target=probe_writer if n == 0 else probe_reader, daemon=True))
        for t in threads:
            t.start()
        pause(duration)
        stop.set()
        for t in threads:
            t.join(60)
        s = full.stats()
        stats = {
            "loads": s.loads + l2.stats().loads,
            "l1_hits": s.tiers[0].hits,
            "l1_misses": s.tiers[0].misses,
            "l2_hits": s.tiers[1].hits,
            "remote_invalidations": s.remote_invalidations,
        }
    out.put(
        {
            "n": n,
            "reads": reads,
            "writes": writes,
            "errors": errors[:20],
            "error_count": len(errors),
            "probe_sent": probe_sent,
            "probe_seen": probe_seen,
            "stats": stats,
        }
    )


def _delivery(sent: list[tuple[int, float]], seen: list[tuple[int, float]]) -> list[float]:
    """Per probe version: first time the reader saw it (or a newer one) - the time before it was set."""
    seen_v = [v for v, _ in seen]
    out = []
    for k, t0 in sent[:-1]:  # the last one may have been set after the reader stopped
        i = bisect.bisect_left(seen_v, k)
        if i < len(seen):
            out.append(seen[i][1] - t0)
    return out


def _history(
    writes: list[tuple[int, int, float, float, str]],
    reads: list[tuple[bool, int, int, float, float]],
    *,
    l2: bool,
    bound: float,
    tag_bound: float,
) -> staleness.Report:
    history = staleness.History(keep_reads=False, max_examples=5)
    for idx, v, committed, done, kind in sorted(writes, key=lambda w: w[3]):
        history.write_committed(idx, v, at=committed)
        history.invalidation_done(idx, v, at=done + (tag_bound if kind == "tag" else bound))
    for through_l2, idx, v, start, end in sorted(reads, key=lambda r: r[3]):
        if through_l2 == l2:
            history.read(idx, v, start, end)
    return history.check()


def _one(spec: tuple[str, str, str], duration: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    versions = ctx.Array("q", KEYS)
    locks = [ctx.Lock() for _ in range(LOCK_STRIPES)]
    barrier = ctx.Barrier(PROCESSES, timeout=120)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(spec, n, duration, versions, locks, barrier, out), daemon=True)
        for n in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    try:
        reports = sorted((out.get(timeout=duration + 180) for _ in procs), key=lambda r: r["n"])
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    reads = [r for rep in reports for r in rep["reads"]]
    writes = [w for rep in reports for w in rep["writes"]]
    delivery = _delivery(reports[0]["probe_sent"], reports[1]["probe_seen"])
    redis = spec[0] == "redis"
    measured = max(delivery) if delivery else None
    l1_bound = (measured or 0.0) if redis else 0.0
    tag_bound = l1_bound  # over SQLite 0: the log carries the counters too
    exact_l2 = _history(writes, reads, l2=True, bound=0.0, tag_bound=0.0)
    l2 = _history(writes, reads, l2=True, bound=0.0, tag_bound=tag_bound)
    exact_l1 = _history(writes, reads, l2=False, bound=0.0, tag_bound=0.0)
    l1 = _history(writes, reads, l2=False, bound=l1_bound, tag_bound=l1_bound)

    def rep(r: staleness.Report) -> dict[str, Any]:
        return {
            "reads": r.reads,
            "stale_reads": r.stale_reads,
            "max_staleness_ms": round(r.max_staleness * 1000, 3),
            "examples": [str(e) for e in r.examples],
        }

    return {
        "reads_checked": exact_l2.reads + exact_l1.reads,
        "writes": len(writes),
        "writes_by_kind": {k: sum(w[4] == k for w in writes) for k in KINDS},
        "errors": sum(r["error_count"] for r in reports),
        "error_examples": [e for r in reports for e in r["errors"]][:5],
        "delivery": latency_summary(delivery) | {"probes": len(delivery)},
        "delivery_p99_s": quantile(delivery, 0.99),
        "delivery_max_s": measured,
        "l1_bound_ms": round(l1_bound * 1000, 3),
        "l2": rep(l2),
        "l2_at_bound_0": rep(exact_l2),
        "full": rep(l1),
        "full_at_bound_0": rep(exact_l1),
        "per_process": [r["stats"] | {"reads": len(r["reads"]), "writes": len(r["writes"])} for r in reports],
    }


def run(*, quick: bool, duration: float) -> list[Result]:
    result = Result("3", "Randomized checker: 2 processes, Zipf keys, 70/30 read/write")
    result.params.update(
        {
            "processes": PROCESSES,
            "threads_per_process": THREADS,
            "keys": KEYS,
            "zipf_s": ZIPF_S,
            "read_share": READ_SHARE,
            "duration_s": duration,
            "reads_through_l2_only": "1 in 4",
            "invalidations": list(KINDS),
            "ttl_s": 30,
            "redis_timeout_s": 2.0,
        }
    )
    min_reads = 10_000 if quick else 100_000
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="consistency-"))
        server = stack.enter_context(redis_server())
        configs = {
            "memory+SQLite": ("sqlite", str(Path(tmp) / "checker.db"), ""),
            "memory+Redis": ("redis", server.url, prefix()),
        }
        for name, spec in configs.items():
            f = _one(spec, duration)
            result.figures[name] = f
            redis = spec[0] == "redis"
            result.check(
                f"{name}: reads checked", f["reads_checked"], f">= {min_reads:,}", f["reads_checked"] >= min_reads
            )
            result.check(f"{name}: errors raised", f["errors"], "0", f["errors"] == 0)
            if redis:
                result.check(
                    f"{name}: L2 stale reads (delete/set at 0 ms; another process's tag bump within "
                    "the delivery bound)",
                    f["l2"]["stale_reads"],
                    "0",
                    f["l2"]["stale_reads"] == 0,
                )
                result.info(
                    f"{name}: L2 reads stale at a 0 ms bound (all from tag bumps in flight)",
                    f["l2_at_bound_0"]["stale_reads"],
                )
            else:
                result.check(
                    f"{name}: L2 stale reads (bound 0 ms)", f["l2"]["stale_reads"], "0", f["l2"]["stale_reads"] == 0
                )
            bound = f"{f['l1_bound_ms']:.1f} ms (measured delivery max)" if redis else "0 ms (log polled per op)"
            result.check(
                f"{name}: L1 stale reads beyond the propagation bound {bound}",
                f["full"]["stale_reads"],
                "0",
                f["full"]["stale_reads"] == 0,
            )
            if redis:
                result.info(
                    f"{name}: L1 reads stale at a 0 ms bound (max staleness "
                    f"{f['full_at_bound_0']['max_staleness_ms']:.1f} ms)",
                    f["full_at_bound_0"]["stale_reads"],
                )
                mx = f["delivery_max_s"]
                result.check(
                    f"{name}: backplane delivery max (ms)",
                    None if mx is None else mx * 1000,
                    f"< {DOC_MAX * 1000:.0f}",
                    mx is not None and mx < DOC_MAX,
                )
            # The probe's own floor: over SQLite propagation is 0 by construction, so what the same probe measures
            # there is the reader thread's scheduling on a busy machine; the documented p99 < 50 ms (docs/faults.md)
            # was measured with idle workers, so under this load it is reported, not held as a bound.
            result.info(
                f"{name}: probe delivery p50 / p99 / max (ms; idle-machine p99 bound {DOC_P99 * 1000:.0f})",
                f"{f['delivery']['p50_ms']} / {f['delivery']['p99_ms']} / {f['delivery']['max_ms']}",
            )
            result.info(f"{name}: writes (delete/set/tag)", "/".join(str(f["writes_by_kind"][k]) for k in KINDS))
    return [result]
