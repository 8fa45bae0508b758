"""``python -m benchmarks.consistency [--out DIR] [--quick] [--duration S] [--only 1,3]``: JSON + markdown table.

Every server is its own (``redis-server`` on a free 127.0.0.1 port, started by ``tests/support/servers.py``) and
stopped at the end. A full run takes under 8 minutes on a 2-core machine (``--quick``: under 90 s). Exit status 0
when every figure held its bound, 1 if not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # tests.support.servers lives at the repository root
    sys.path.insert(0, str(ROOT))

from benchmarks.consistency import checker, failsafe, interleavings, stampede, xfetch  # noqa: E402
from benchmarks.faults.common import Result, run_scenarios  # noqa: E402

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
    duration = args.duration if args.duration is not None else (10.0 if args.quick else 60.0)
    return run_scenarios(parser, args, SCENARIOS, {"3": {"duration": duration}})


if __name__ == "__main__":
    sys.exit(main())
