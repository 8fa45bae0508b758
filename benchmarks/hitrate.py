"""The ``hitrate`` suite: replay the seeded traces of :mod:`benchmarks.traces` with ``stratacache.simulate``.

Each trace is replayed at 1% and 10% of its distinct keys against LRU, W-TinyLFU (adaptive and fixed 1% window),
theine (when installed) and Belady's optimum. The targets (issue 5): stratacache's adaptive W-TinyLFU within
0.5 points of theine, and at or above LRU, on every trace and capacity.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from benchmarks.traces import N_REQUESTS, TRACES

if TYPE_CHECKING:
    from collections.abc import Callable

POLICIES = ("lru", "tinylfu", "tinylfu-fixed", "theine", "opt")
THEINE_TOLERANCE_POINTS = 0.5


def run(log: Callable[[str], Any]) -> dict[str, Any]:
    """Generate every trace, replay it, and return the JSON-ready results (one row per trace and capacity)."""
    from stratacache.simulate import default_capacities, missing_policies, simulate

    skipped = missing_policies(POLICIES)
    policies = [p for p in POLICIES if p not in skipped]
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for name, make in TRACES.items():
        trace = make()
        distinct = len(set(trace))
        caps = default_capacities(trace)
        t = time.perf_counter()
        results = simulate(trace, caps, policies)
        log(f"  hitrate {name}: {len(trace):,} requests, {distinct:,} keys ({time.perf_counter() - t:.1f} s)")
        for cap, share in zip(caps, ("1%", "10%"), strict=True):
            ratios = {r.policy: r.hit_ratio for r in results if r.capacity == cap}
            rows.append(_row(name, requests=len(trace), distinct=distinct, cap=cap, share=share, ratios=ratios))
    return {
        "policies": policies,
        "skipped": skipped,
        "requests_per_trace": N_REQUESTS,
        "capacities": "1% and 10% of each trace's distinct keys",
        "targets": {
            "tinylfu_minus_theine_points_min": -THEINE_TOLERANCE_POINTS,
            "tinylfu_minus_lru_points_min": 0.0,
        },
        "duration_s": round(time.perf_counter() - t0, 1),
        "rows": rows,
    }


def _row(name: str, *, requests: int, distinct: int, cap: int, share: str, ratios: dict[str, float]) -> dict[str, Any]:
    tl = ratios.get("tinylfu")
    vs_theine = (tl - ratios["theine"]) * 100 if tl is not None and "theine" in ratios else None
    vs_lru = (tl - ratios["lru"]) * 100 if tl is not None and "lru" in ratios else None
    return {
        "trace": name,
        "requests": requests,
        "distinct_keys": distinct,
        "capacity": cap,
        "capacity_share": share,
        "hit_ratio": ratios,
        "tinylfu_minus_theine_points": vs_theine,
        "tinylfu_minus_lru_points": vs_lru,
        "theine_target_met": vs_theine >= -THEINE_TOLERANCE_POINTS if vs_theine is not None else None,
        "lru_target_met": vs_lru >= 0 if vs_lru is not None else None,
    }


def _delta(points: float | None, met: bool | None) -> str:
    if points is None:
        return "—"
    return f"{points:+.2f} {'✓' if met else '✗ **missed**'}"


def markdown(hr: dict[str, Any]) -> str:
    policies = hr["policies"]
    rows = hr["rows"]
    lines = [
        "## Hit ratios",
        "",
        (
            f"- Method: `stratacache.simulate` replays each seeded trace ({hr['requests_per_trace']:,} requests, "
            f"`benchmarks/traces.py`) at {hr['capacities']}; hit ratio in %. tinylfu is stratacache's default "
            "(adaptive window), tinylfu-fixed a 1% window, opt Belady's optimum (an upper bound)."
        ),
        (
            f"- Targets: tinylfu - theine ≥ -{THEINE_TOLERANCE_POINTS} points and tinylfu - lru ≥ 0 on every row "
            "(✓ met, ✗ missed)."
        ),
        (
            "- Repeatability: the traces and stratacache's policies are seeded, so their figures are identical from "
            "run to run; theine's are not (its sketch is seeded per process) and move by about a point between runs."
        ),
    ]
    lines += [f"- Skipped: {p} ({why})" for p, why in hr["skipped"].items()]
    lines += [
        "",
        "| trace | keys | capacity | " + " | ".join(policies) + " | tinylfu - theine | tinylfu - lru |",
        "|---|---:|---:|" + "---:|" * len(policies) + "---:|---:|",
    ]
    for r in rows:
        cells = [f"{r['hit_ratio'][p] * 100:.1f}" if p in r["hit_ratio"] else "—" for p in policies]
        lines.append(
            f"| {r['trace']} | {r['distinct_keys']:,} | {r['capacity']:,} ({r['capacity_share']}) | "
            + " | ".join(cells)
            + f" | {_delta(r['tinylfu_minus_theine_points'], r['theine_target_met'])}"
            + f" | {_delta(r['tinylfu_minus_lru_points'], r['lru_target_met'])} |"
        )
    theine_missed = sum(r["theine_target_met"] is False for r in rows)
    lru_missed = sum(r["lru_target_met"] is False for r in rows)
    lines += [
        "",
        (
            f"Targets missed: {theine_missed} of {len(rows)} rows against theine, "
            f"{lru_missed} of {len(rows)} against LRU."
        ),
    ]
    return "\n".join(lines) + "\n"
