"""``python -m benchmarks.faults [--out DIR] [--quick] [--only 1,4]``: run the fault scenarios, write JSON + markdown.

The whole run takes under 5 minutes (``--quick``: under 1 minute) on a 2-core machine; every server it uses is
its own, on 127.0.0.1, and is stopped at the end. Exit status: 0 when every scenario passed its bounds, 1 if not.
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

from benchmarks.faults import backplane, blackholed, crossproc, killed, reply_race, slow  # noqa: E402
from benchmarks.faults.common import Result, run_scenarios  # noqa: E402

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
    return run_scenarios(parser, args, SCENARIOS)


if __name__ == "__main__":
    sys.exit(main())
