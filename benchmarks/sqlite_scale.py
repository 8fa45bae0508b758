"""The ``sqlite-scale`` suite: embedded-store get (hit) and set (overwrite) per-op cost as the table grows.

The in-process tier is grown and timed beside them (``Cache(MemoryTier(max_entries=2_000_000, max_bytes=None),
ttl=None)``: nothing is evicted; impl ``stratacache-memory``), for the same scale target.

Each library's store (the same configurations as the ``sqlite`` suite: ``Cache(SQLiteTier(path,
max_bytes=None), ttl=None)`` with no L1, and ``diskcache.Cache`` with its defaults, in one temporary directory) is
grown in batches of 10,000 rows to 10^3, 10^5 and 10^6 rows. At each size, passes of gets and of overwrites of
keys drawn uniformly from all the rows (fixed seed) alternate between the libraries, round after round, so a
drift of the machine reaches both. The figure is the median over rounds of a pass's time per operation (the
minimum is kept too). Targets (issue 5): stratacache at or below diskcache at every size, and its cost at 10^6
rows within 2x of its cost at 10^3 rows. Not part of the round-robin harness: the rows are grown between sizes.
"""

from __future__ import annotations

import gc
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.adapters import ADAPTERS, KV

if TYPE_CHECKING:
    from collections.abc import Callable

SUITE = "sqlite-scale"
PEERS = ("stratacache", "diskcache")
MEMORY = "stratacache-memory"  # the in-process tier, for the scale target only
SIZES = (1_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)
ROUNDS = 15
QUICK_ROUNDS = 3
GETS = 2_000  # operations per get pass
SETS = 500  # per set pass
FILL_BATCH = 10_000
SEED = 20_240_605
SCALE_TARGET = 2.0


def key_of(i: int) -> str:
    return f"user:{i:07d}"


def value_of(i: int) -> dict[str, Any]:
    """The ``sqlite`` suite's value shape."""
    return {"id": i, "name": f"user-{i}", "active": True}


def _timed(fn: Callable[..., Any], ops: list[tuple[Any, ...]]) -> float:
    """Nanoseconds per call of ``fn(*op)`` over ``ops``, ``gc`` off."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for op in ops:
            fn(*op)
        return (time.perf_counter_ns() - t0) / len(ops)
    finally:
        gc.enable()


def _memory_store() -> KV:
    """stratacache's in-process tier (the default W-TinyLFU) bounded above the largest size: nothing is evicted."""
    import stratacache as sc

    bound = 2 * max(SIZES)
    c = sc.Cache(sc.MemoryTier(max_entries=bound, max_bytes=None), namespace="bench-l1-scale", ttl=None)
    return KV(
        label=f"Cache(MemoryTier(max_entries={bound:_}, max_bytes=None)), ttl=None",
        get=c.get,
        set=c.set,
        read=c.get,
        prefill=lambda items: c.set_many(dict(items)),
        close=c.close,
    )


def _stats(samples: list[float]) -> dict[str, float]:
    return {"median_ns": statistics.median(samples), "min_ns": min(samples)}


def run(log: Callable[[str], Any], *, tmp_root: Path | None = None, quick: bool = False) -> dict[str, Any]:
    """Grow each store through the sizes, time gets and sets at each, and return JSON-ready results."""
    sizes = QUICK_SIZES if quick else SIZES
    rounds = QUICK_ROUNDS if quick else ROUNDS
    directory = Path(tempfile.mkdtemp(prefix="stratacache-scale-", dir=tmp_root))
    stores: dict[str, KV] = {}
    problems: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    try:
        for name in PEERS:
            adapter = ADAPTERS[name]()
            try:
                adapter.load()
                stores[name] = adapter.disk(directory / name)
            except Exception as exc:
                problems[name] = f"{type(exc).__name__}: {exc}"
        try:
            stores[MEMORY] = _memory_store()
        except Exception as exc:
            problems[MEMORY] = f"{type(exc).__name__}: {exc}"
        labels = {name: kv.label for name, kv in stores.items()}
        filled = 0
        rng = random.Random(SEED)
        for n in sizes:
            for name, kv in stores.items():
                t0 = time.perf_counter()
                for lo in range(filled, n, FILL_BATCH):
                    kv.prefill([(key_of(i), value_of(i)) for i in range(lo, min(n, lo + FILL_BATCH))])
                log(f"  {SUITE}: {name} grown to {n:,} rows in {time.perf_counter() - t0:.1f} s")
            filled = n
            picks = [rng.randrange(n) for _ in range(GETS)]
            gets = [(key_of(i),) for i in picks]
            sets = [(key_of(i), value_of(i)) for i in picks[:SETS]]
            for name, kv in stores.items():  # check before timing: a "hit" that missed would time the wrong thing
                bad = [k for (k,) in gets[:200] if kv.read(k) != value_of(int(k[5:]))]
                if bad:
                    problems[name] = f"{len(bad)}/200 sampled keys missing or wrong at {n:,} rows, e.g. {bad[0]!r}"
            samples: dict[tuple[str, str], list[float]] = {}
            for _ in range(rounds):
                for name, kv in stores.items():
                    samples.setdefault((name, "get-hit"), []).append(_timed(kv.get, gets))
                    samples.setdefault((name, "set"), []).append(_timed(kv.set, sets))
            for (name, op), s in samples.items():
                rows.append({"impl": name, "op": op, "rows": n, **_stats(s), "samples_ns": s})
            log(f"  {SUITE}: timed {n:,} rows")
    finally:
        for kv in stores.values():
            try:
                kv.close()
            except Exception as exc:  # recorded; the other store still closes
                problems.setdefault("teardown", f"{type(exc).__name__}: {exc}")
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "sizes": list(sizes),
        "rounds": rounds,
        "ops_per_pass": {"get-hit": GETS, "set": SETS},
        "labels": labels,
        "rows": rows,
        "problems": problems,
    }


def _median(result: dict[str, Any], impl: str, op: str, n: int) -> float | None:
    for r in result["rows"]:
        if (r["impl"], r["op"], r["rows"]) == (impl, op, n):
            return float(r["median_ns"])
    return None


def _us(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1000:.1f}"


def markdown(result: dict[str, Any]) -> str:
    sizes = result["sizes"]
    lines = [
        "## SQLite (and the memory tier) at scale",
        "",
        (
            f"- Method: `benchmarks/sqlite_scale.py`: each store grown to {', '.join(f'{n:,}' for n in sizes)} "
            f"rows; at each size {result['rounds']} rounds alternating the libraries of a pass of "
            f"{result['ops_per_pass']['get-hit']:,} gets and one of {result['ops_per_pass']['set']:,} overwrites "
            "of uniformly drawn keys; median µs per operation over the rounds."
        ),
        (
            f"- Targets: stratacache ≤ diskcache (ratio ≤ 1) and cost at {sizes[-1]:,} rows ≤ {SCALE_TARGET:g} "
            f"times the cost at {sizes[0]:,} rows (✓ met, ✗ missed)."
        ),
    ]
    lines += [f"- {impl}: `{label}`" for impl, label in result["labels"].items()]
    lines += [f"- Problem: {impl}: {p}" for impl, p in result["problems"].items()]
    lines += [
        "",
        "| op | rows | stratacache µs | diskcache µs | stratacache / diskcache |",
        "|---|---:|---:|---:|---:|",
    ]
    for op in ("get-hit", "set"):
        for n in sizes:
            sc, dc = _median(result, "stratacache", op, n), _median(result, "diskcache", op, n)
            ratio = "-" if sc is None or dc is None else f"{sc / dc:.2f} {'✓' if sc <= dc else '✗'}"
            lines.append(f"| {op} | {n:,} | {_us(sc)} | {_us(dc)} | {ratio} |")
    lines += ["", f"| op | library | {sizes[-1]:,} / {sizes[0]:,} rows |", "|---|---|---:|"]
    for op in ("get-hit", "set"):
        for impl in (*PEERS, MEMORY):
            big, small = _median(result, impl, op, sizes[-1]), _median(result, impl, op, sizes[0])
            if big is None or small is None:
                continue
            scale = big / small
            mark = f" {'✓' if scale <= SCALE_TARGET else '✗'}" if impl != "diskcache" else ""
            lines.append(f"| {op} | {impl} | {scale:.2f}{mark} |")
    return "\n".join(lines) + "\n"
