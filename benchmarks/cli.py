"""``python -m benchmarks run [SUITE ...] [--out DIR] [--quick] [--repeats N]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import harness, hitrate, memory, metrics_overhead, report, sqlite_scale, suites

SUITES = (*suites.SUITES, sqlite_scale.SUITE, memory.SUITE, metrics_overhead.SUITE)  # the last three run apart

DEFAULT_REPEATS = 40
DEFAULT_TARGET_MS = 30.0
QUICK_REPEATS = 3
QUICK_TARGET_MS = 10.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run suites and write results")
    run.add_argument(
        "suites",
        nargs="*",
        metavar="SUITE",
        help=f"suites to run, among {', '.join(SUITES)} (default: all)",
    )
    run.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="results directory")
    run.add_argument("--quick", action="store_true", help="few short repeats: a smoke test, not a measurement")
    run.add_argument("--repeats", type=int, help=f"samples per case (default {DEFAULT_REPEATS}, quick {QUICK_REPEATS})")
    run.add_argument(
        "--target-ms",
        type=float,
        help=f"duration of one timed pass (default {DEFAULT_TARGET_MS:g}, quick {QUICK_TARGET_MS:g})",
    )
    run.add_argument("--tmpdir", type=Path, help="where the sqlite suite creates its files (default: system tmp)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    chosen = list(dict.fromkeys(args.suites)) or list(SUITES)
    unknown = [s for s in chosen if s not in SUITES]
    if unknown:
        print(f"unknown suite(s) {', '.join(unknown)}; choose among {', '.join(SUITES)}", file=sys.stderr)
        return 2
    repeats = args.repeats or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    target_ms = args.target_ms or (QUICK_TARGET_MS if args.quick else DEFAULT_TARGET_MS)
    if repeats < 1 or target_ms <= 0:
        print("--repeats and --target-ms must be positive", file=sys.stderr)
        return 2
    return run(chosen, out=args.out, repeats=repeats, target_ms=target_ms, quick=args.quick, tmp_root=args.tmpdir)


def run(chosen: list[str], *, out: Path, repeats: int, target_ms: float, quick: bool, tmp_root: Path | None) -> int:
    log = harness.stderr_log
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    load_start = report.loadavg()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ctx = suites.Context(loop=loop, tmp_root=tmp_root)
    close_problems: list[str] = []
    timed = [s for s in chosen if s in suites.TIMED]
    hit_ratios: dict[str, object] | None = None
    mem: dict[str, object] | None = None
    scale: dict[str, object] | None = None
    overhead: dict[str, object] | None = None
    try:
        log(f"setting up suites {', '.join(chosen)}")
        cases = suites.build([s for s in chosen if s in suites.SUITES], ctx)
        env = report.environment(ctx.tmpdir)
        log(f"timing {sum(c.ok for c in cases)} cases, {repeats} repeats of ~{target_ms:g} ms")
        harness.run_cases(cases, repeats=repeats, target_ms=target_ms, log=log)
        if "hitrate" in chosen:
            log("replaying the hit-ratio traces")
            hit_ratios = hitrate.run(log)
        if memory.SUITE in chosen:
            log("measuring memory per entry (a fresh subprocess per case)")
            mem = memory.run(log)
        if sqlite_scale.SUITE in chosen:
            log("growing and timing the sqlite-scale stores")
            scale = sqlite_scale.run(log, tmp_root=tmp_root, quick=quick)
        if metrics_overhead.SUITE in chosen:
            log("timing the read paths with and without metrics and tracing")
            overhead = metrics_overhead.run(log, tmp_root=tmp_root, quick=quick)
    finally:
        close_problems = ctx.close()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)
    doc = {
        "schema": 1,
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - t0, 1),
        "command": [sys.executable, "-m", "benchmarks", *sys.argv[1:]],
        "config": {
            "suites": chosen,
            "repeats": repeats,
            "target_ms": target_ms,
            "quick": quick,
            "order": "round-robin: repeat r of every case before repeat r+1 of any",
            "gc": "gc.collect() before, gc disabled during each timed pass",
            "timer": "time.perf_counter_ns around a pass of N operations",
            "keys": suites.N_KEYS,
            "decorator_args": suites.N_ARGS,
            "seed": suites.SEED,
        },
        "machine": env,
        "loadavg": {"start": load_start, "end": report.loadavg()},
        "packages": report.packages(),
        "cases": [report.case_json(c) for c in cases],
        "table": report.rows(cases),
        "teardown_problems": close_problems,
    }
    if hit_ratios is not None:
        doc["hitrate"] = hit_ratios
    if mem is not None:
        doc["memory"] = mem
    if scale is not None:
        doc["sqlite_scale"] = scale
    if overhead is not None:
        doc["metrics_overhead"] = overhead
    md = report.markdown(doc) if timed else f"# stratacache benchmarks ({doc['started_at']})\n"
    if scale is not None:
        md += "\n" + sqlite_scale.markdown(scale)
    if hit_ratios is not None:
        md += "\n" + hitrate.markdown(hit_ratios)
    if mem is not None:
        md += "\n" + memory.markdown(mem)
    if overhead is not None:
        md += "\n" + metrics_overhead.markdown(overhead)
    out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(doc, indent=1) + "\n"
    (out / f"{stamp}.json").write_text(text, encoding="utf-8")
    (out / "latest.json").write_text(text, encoding="utf-8")
    (out / "latest.md").write_text(md, encoding="utf-8")
    print(md)
    log(f"wrote {out / f'{stamp}.json'}, {out / 'latest.json'}, {out / 'latest.md'} in {doc['duration_s']} s")
    return 0
