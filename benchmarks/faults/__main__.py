"""``python -m benchmarks.faults [--out DIR] [--quick] [--only 1,4]``: run the fault scenarios, write JSON + markdown.

The whole run takes under 5 minutes (``--quick``: under 1 minute) on a 2-core machine; every server it uses is
its own, on 127.0.0.1, and is stopped at the end. Exit status: 0 when every scenario passed its bounds, 1 if not.
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

from benchmarks.faults import backplane, blackholed, crossproc, killed, reply_race, slow  # noqa: E402
from benchmarks.faults.common import FAIL, Result, environment, markdown, redis_version  # noqa: E402

SCENARIOS: dict[str, Callable[..., list[Result]]] = {
    "1": killed.run,
    "2": blackholed.run,
    "3": slow.run,
    "4": crossproc.run,
    "5": backplane.run,
    "6": reply_race.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "faults")
    parser.add_argument("--quick", action="store_true", help="shorter outages and fewer changes/trials (< 1 min)")
    parser.add_argument("--only", default="", help="comma-separated scenario numbers (default: all)")
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or list(SCENARIOS)
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}")
    # the backplane logs every loss it detects: expected here, and counted in the figures
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
            results = SCENARIOS[sid](quick=args.quick)
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
