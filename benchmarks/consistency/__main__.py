"""``python -m benchmarks.consistency [--out DIR] [--quick] [--duration S] [--only 1,3]``: JSON + markdown table.

Every server is its own (``redis-server`` on a free 127.0.0.1 port, started by ``tests/support/servers.py``) and
stopped at the end. A full run takes under 8 minutes on a 2-core machine (``--quick``: under 90 s). Exit status 0
when every figure held its bound, 1 if not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # tests.support.servers lives at the repository root
    sys.path.insert(0, str(ROOT))

from benchmarks.consistency import checker, failsafe, interleavings, stampede, xfetch  # noqa: E402
from benchmarks.faults.common import FAIL, Result, environment, markdown, redis_version  # noqa: E402

SCENARIOS: dict[str, Callable[..., list[Result]]] = {
    "1": interleavings.run,
    "3": checker.run,
    "4": stampede.run,
    "5": xfetch.run,
    "6": failsafe.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.consistency", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "consistency")
    parser.add_argument("--quick", action="store_true", help="fewer runs, 10 s checker runs (< 90 s in all)")
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds of scenario 3 per configuration (60; quick: 10)"
    )
    parser.add_argument("--only", default="", help="comma-separated scenario numbers (default: all)")
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or list(SCENARIOS)
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}")
    duration = args.duration if args.duration is not None else (10.0 if args.quick else 60.0)
    logging.getLogger("stratacache").setLevel(logging.ERROR)
    started = dt.datetime.now(dt.UTC)
    doc: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
        "environment": environment(redis_version()),
        "scenarios": [],
    }
    t_run = time.monotonic()
    for sid in wanted:
        t0 = time.monotonic()
        print(f"scenario {sid} ...", file=sys.stderr, flush=True)
        try:
            kwargs: dict[str, Any] = {"quick": args.quick}
            if sid == "3":
                kwargs["duration"] = duration
            results = SCENARIOS[sid](**kwargs)
        except Exception as exc:
            failed = Result(sid, f"scenario {sid}")
            failed.check("ran to completion", f"{type(exc).__name__}: {exc}", "no exception", passed=False)
            failed.notes.append(traceback.format_exc())
            results = [failed]
        took = time.monotonic() - t0
        for r in results:
            r.seconds = took / len(results)
            doc["scenarios"].append(r.to_json())
            print(f"  {r.id} {r.status} ({took:.1f} s)", file=sys.stderr, flush=True)
    doc["seconds"] = round(time.monotonic() - t_run, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "")
    text = json.dumps(doc, indent=1, default=str) + "\n"
    table = markdown(doc)
    for name in (stamp, "latest-quick" if args.quick else "latest"):
        (args.out / f"{name}.json").write_text(text, encoding="utf-8")
        (args.out / f"{name}.md").write_text(table, encoding="utf-8")
    print(table)
    print(f"written to {args.out}/{stamp}.json and .md", file=sys.stderr)
    return 1 if any(r["status"] == FAIL for r in doc["scenarios"]) else 0


if __name__ == "__main__":
    sys.exit(main())
