"""The ``memory`` suite: bytes per entry of 100,000 small entries, per library (issue 5, "Memory").

Not timed. Every (library, value kind, method) is measured in a **fresh subprocess** (``python -m
benchmarks.memory IMPL VALUE METHOD``), so one measurement's heap, arenas and allocator state never leak into
another's. Keys (``user:0``...) and values (an ``int``, or a short ``dict``) are built *before* the measured
window, so the figures are what the cache adds on top of the data it is given; the cache is constructed inside
the window, so capacity-sized tables count.

- ``tracemalloc``: bytes allocated through Python's allocators and still held after building (``retained``),
  and the highest level during the build (``peak``), from ``tracemalloc.get_traced_memory()``. Blind to memory a
  native extension allocates itself: cachebox's and theine's tables live in Rust, so their tracemalloc figures
  are lower bounds; compare them by RSS.
- ``rss``: resident set size after building minus before (``psutil`` when installed, else
  ``/proc/self/statm``), without tracemalloc running; the median of :data:`RSS_RUNS` subprocesses.

Every cache gets room for :data:`MAXSIZE` entries (nothing is evicted) and, where it has one, a TTL of
:data:`TTL` seconds (nothing expires). A sample of keys is read back after measuring; a cache that lost entries
is reported as an error. The target: stratacache's L1 at or below ``cachetools.TTLCache``.
"""

from __future__ import annotations

import functools
import gc
import importlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

N_ENTRIES = 100_000
MAXSIZE = 200_000
TTL = 300
RSS_RUNS = 3
CHECK_EVERY = 997  # every 997th key is read back after measuring
SUITE = "memory"
VALUES = ("int", "dict")
REFERENCE = "cachetools.TTLCache"
TARGET_RATIO = 1.0
STRATACACHE = ("stratacache lru", "stratacache tinylfu")
NATIVE = ("cachebox.LRUCache", "cachebox.TTLCache", "theine.Cache")  # tables allocated in Rust, unseen by tracemalloc
EXIT_MISSING = 3


def value_of(kind: str, i: int) -> Any:
    """The ``i``-th value: an ``int``, or a short ``dict`` shaped like a row."""
    return i if kind == "int" else {"id": i, "active": True}


Built = tuple["Callable[[str, Any], Any]", "Callable[[str], Any]", str]  # write one entry, read one back, label


def _dict(data: dict[str, Any]) -> Built:
    d: dict[str, Any] = {}
    return d.__setitem__, d.get, "dict (unbounded, no TTL)"


def _lru_cache(data: dict[str, Any]) -> Built:
    # no set: an entry is made by calling the memoized function once (the key is its single str argument)
    fn = functools.lru_cache(maxsize=MAXSIZE)(data.__getitem__)
    return lambda k, _v: fn(k), fn, f"functools.lru_cache(maxsize={MAXSIZE}) around a lookup (approximate)"


def _cachetools(ttl: bool) -> Callable[[dict[str, Any]], Built]:
    def build(data: dict[str, Any]) -> Built:
        ct = importlib.import_module("cachetools")
        if ttl:
            c = ct.TTLCache(maxsize=MAXSIZE, ttl=TTL)
            return c.__setitem__, c.get, f"cachetools.TTLCache(maxsize={MAXSIZE}, ttl={TTL})"
        c = ct.LRUCache(maxsize=MAXSIZE)
        return c.__setitem__, c.get, f"cachetools.LRUCache(maxsize={MAXSIZE})"

    return build


def _cachebox(ttl: bool) -> Callable[[dict[str, Any]], Built]:
    def build(data: dict[str, Any]) -> Built:
        cb = importlib.import_module("cachebox")
        if ttl:
            c = cb.TTLCache(MAXSIZE, TTL)
            return c.__setitem__, c.get, f"cachebox.TTLCache({MAXSIZE}, {TTL})"
        c = cb.LRUCache(MAXSIZE)
        return c.__setitem__, c.get, f"cachebox.LRUCache({MAXSIZE})"

    return build


def _theine(data: dict[str, Any]) -> Built:
    th = importlib.import_module("theine")
    c = th.Cache(MAXSIZE)
    set_ = functools.partial(c.set, ttl=timedelta(seconds=TTL))
    return set_, lambda k: c.get(k)[0], f"theine.Cache({MAXSIZE}) (W-TinyLFU), set(ttl={TTL} s)"


def _stratacache(policy: str) -> Callable[[dict[str, Any]], Built]:
    def build(data: dict[str, Any]) -> Built:
        sc = importlib.import_module("stratacache")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # policy="tinylfu" warns that it is experimental
            c = sc.Cache(sc.MemoryTier(max_entries=MAXSIZE, max_bytes=None, policy=policy), ttl=TTL)
        label = f'stratacache.Cache(MemoryTier(max_entries={MAXSIZE}, max_bytes=None, policy="{policy}"), ttl={TTL})'
        return c.set, c.get, label

    return build


# how each library's cache is constructed (inside the measured window)
BUILDERS: dict[str, Callable[[dict[str, Any]], Built]] = {
    "dict": _dict,
    "functools.lru_cache": _lru_cache,
    "cachetools.LRUCache": _cachetools(ttl=False),
    "cachetools.TTLCache": _cachetools(ttl=True),
    "cachebox.LRUCache": _cachebox(ttl=False),
    "cachebox.TTLCache": _cachebox(ttl=True),
    "theine.Cache": _theine,
    "stratacache lru": _stratacache("lru"),
    "stratacache tinylfu": _stratacache("tinylfu"),
}
IMPLS = tuple(BUILDERS)


def _build(impl: str, data: dict[str, Any]) -> Built:
    return BUILDERS[impl](data)


def _warm_up(impl: str) -> None:
    """Build and drop a small cache first, so imports and lazy set-up happen before the measured window."""
    data = {f"warm:{i}": i for i in range(8)}
    set_, _, _ = _build(impl, data)
    for k, v in data.items():
        set_(k, v)


def _rss() -> int:
    try:
        import psutil
    except ImportError:
        fields = Path("/proc/self/statm").read_text(encoding="ascii").split()
        return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
    return int(psutil.Process().memory_info().rss)


def child(impl: str, kind: str, method: str, n: int = N_ENTRIES) -> dict[str, Any]:
    """Measure one case in this process (meant to be a fresh one): the JSON-ready result."""
    _warm_up(impl)
    keys = [f"user:{i}" for i in range(n)]
    values = [value_of(kind, i) for i in range(n)]
    data = dict(zip(keys, values, strict=True))
    gc.collect()
    out: dict[str, Any] = {"impl": impl, "value": kind, "method": method, "entries": n}
    if method == "tracemalloc":
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        set_, get, label = _build(impl, data)
        for k, v in zip(keys, values, strict=True):
            set_(k, v)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["retained_bytes"] = current - base
        out["peak_bytes"] = peak - base
    elif method == "rss":
        before = _rss()
        set_, get, label = _build(impl, data)
        for k, v in zip(keys, values, strict=True):
            set_(k, v)
        gc.collect()
        out["rss_bytes"] = _rss() - before
    else:
        raise ValueError(f"unknown method {method!r}")
    out["label"] = label
    sample = keys[::CHECK_EVERY]
    bad = [k for k in sample if get(k) != data[k]]
    if bad:
        out["problem"] = f"{len(bad)}/{len(sample)} sampled keys missing or wrong, e.g. {bad[0]!r}"
    return out


def _spawn(impl: str, kind: str, method: str) -> dict[str, Any]:
    """Run :func:`child` in a fresh interpreter; a missing library or a crash comes back as a status."""
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "benchmarks.memory", impl, kind, method]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode == EXIT_MISSING:
        return {"status": "not installed", "detail": proc.stdout.strip()}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "error", "detail": f"exit {proc.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(proc.stdout)
    result["status"] = "error" if "problem" in result else "ok"
    return result


def _per_entry(nbytes: float | None) -> float | None:
    return None if nbytes is None else nbytes / N_ENTRIES


def run(log: Callable[[str], Any]) -> dict[str, Any]:
    """Measure every library and value kind; return the JSON-ready results (one row per library and value)."""
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for kind in VALUES:
        for impl in IMPLS:
            traced = _spawn(impl, kind, "tracemalloc")
            rss_runs = [_spawn(impl, kind, "rss") for _ in range(RSS_RUNS)] if traced["status"] == "ok" else []
            row: dict[str, Any] = {
                "impl": impl,
                "value": kind,
                "label": traced.get("label"),
                "status": traced["status"],
                "detail": traced.get("detail") or traced.get("problem"),
                "tracemalloc_retained": _per_entry(traced.get("retained_bytes")),
                "tracemalloc_peak": _per_entry(traced.get("peak_bytes")),
                "rss_runs": [_per_entry(r.get("rss_bytes")) for r in rss_runs],
                "rss": None,
            }
            failed = [r for r in rss_runs if r["status"] != "ok"]
            if failed:
                row["status"], row["detail"] = "error", failed[0].get("detail") or failed[0].get("problem")
            elif rss_runs:
                row["rss"] = statistics.median(r["rss_bytes"] for r in rss_runs) / N_ENTRIES
            rows.append(row)
            log(f"  memory {impl} ({kind}): {_fmt(row['tracemalloc_retained'])} B/entry traced, {_fmt(row['rss'])} RSS")
    _ratios(rows)
    return {
        "entries": N_ENTRIES,
        "maxsize": MAXSIZE,
        "ttl": TTL,
        "values": {kind: repr(value_of(kind, 12_345)) for kind in VALUES},
        "keys": "f'user:{i}'",
        "rss_runs": RSS_RUNS,
        "rss_source": "psutil" if importlib.util.find_spec("psutil") else "/proc/self/statm",
        "reference": REFERENCE,
        "target_ratio_max": TARGET_RATIO,
        "duration_s": round(time.perf_counter() - t0, 1),
        "rows": rows,
    }


def _ratios(rows: list[dict[str, Any]]) -> None:
    """Add stratacache / reference ratios (tracemalloc retained and RSS) to stratacache's rows."""
    ref = {r["value"]: r for r in rows if r["impl"] == REFERENCE and r["status"] == "ok"}
    for r in rows:
        base = ref.get(r["value"])
        for method in ("tracemalloc_retained", "rss"):
            ratio = None
            if r["impl"] in STRATACACHE and base is not None and r[method] is not None and base[method]:
                ratio = r[method] / base[method]
            r[f"ratio_{method}"] = ratio
        met = [r[f"ratio_{m}"] for m in ("tracemalloc_retained", "rss") if r[f"ratio_{m}"] is not None]
        r["target_met"] = all(x <= TARGET_RATIO for x in met) if met else None


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def _fmt_ratio(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:.2f} {'✓' if x <= TARGET_RATIO else '✗'}"


def markdown(mem: dict[str, Any]) -> str:
    lines = [
        "## Memory per entry",
        "",
        (
            f"- Method: {mem['entries']:,} entries, keys `{mem['keys']}`, values "
            f"{' or '.join(f'`{v}`' for v in mem['values'].values())} "
            "built before measuring; each case in a fresh subprocess. tracemalloc: bytes still allocated after "
            "building (retained) and the highest level while building (peak); RSS: resident size after minus "
            f"before ({mem['rss_source']}, median of {mem['rss_runs']} subprocesses, without tracemalloc)."
        ),
        (
            f"- Every cache has room for {mem['maxsize']:,} entries and, where it has one, a TTL of {mem['ttl']} s. "
            "† cachebox and theine allocate their tables in Rust, out of tracemalloc's sight: read their RSS."
        ),
        f"- Target: stratacache / {mem['reference']} ≤ {mem['target_ratio_max']:g} (✓ met, ✗ missed).",
        "",
        (
            "| library | value | traced B/entry (retained) | traced peak | RSS B/entry | "
            f"stratacache / {mem['reference']} (traced) | (RSS) |"
        ),
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in mem["rows"]:
        if r["status"] != "ok":
            lines.append(f"| {r['impl']} | {r['value']} | {r['status']}: {r['detail']} | | | | |")
            continue
        lines.append(
            f"| {r['impl']}{' †' if r['impl'] in NATIVE else ''} | {r['value']} "
            f"| {_fmt(r['tracemalloc_retained'])} | {_fmt(r['tracemalloc_peak'])} "
            f"| {_fmt(r['rss'])} | {_fmt_ratio(r['ratio_tracemalloc_retained'])} | {_fmt_ratio(r['ratio_rss'])} |"
        )
    lines += ["", "Configurations:", ""]
    lines += [f"- {r['impl']}: `{r['label']}`" for r in mem["rows"] if r["value"] == VALUES[0] and r["label"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """``python -m benchmarks.memory IMPL VALUE METHOD``: one measurement, as JSON on stdout."""
    impl, kind, method = argv
    try:
        result = child(impl, kind, method)
    except ImportError as exc:
        print(f"{type(exc).__name__}: {exc}")
        return EXIT_MISSING
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
