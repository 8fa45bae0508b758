"""Timing: calibrated passes of N operations, round-robin over every case, ``gc`` off while timing.

A *case* is one operation (``get-hit``, ``set``, ``call-hit``...) on one library. Its pass function runs the same
pre-built list of N operations and returns the elapsed ``perf_counter_ns``; N is chosen once per case so that a
pass lasts about ``target_ms``. Repeat *r* of every case runs before repeat *r+1* of any, so slow drifts of the
machine (frequency, noisy neighbours) spread over all cases instead of biasing one.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Sequence

MAX_N = 1 << 22


# ---------------------------------------------------------------------- pass functions
# The loops are deliberately identical for every library: only the called object differs.


def get_pass(get: Callable[[Any], Any], ops: Sequence[Any]) -> Callable[[], int]:
    """A pass of ``get(k)`` for each k in ``ops``."""

    def run() -> int:
        t0 = time.perf_counter_ns()
        for k in ops:
            get(k)
        return time.perf_counter_ns() - t0

    return run


def set_pass(set_: Callable[[Any, Any], Any], ops: Sequence[tuple[Any, Any]]) -> Callable[[], int]:
    """A pass of ``set(k, v)`` for each pair in ``ops``."""

    def run() -> int:
        t0 = time.perf_counter_ns()
        for k, v in ops:
            set_(k, v)
        return time.perf_counter_ns() - t0

    return run


def async_call_pass(loop: asyncio.AbstractEventLoop, fn: Callable[[Any], Any], ops: Sequence[Any]) -> Callable[[], int]:
    """A pass of ``await fn(a)`` for each a in ``ops``, timed inside the running event loop."""

    async def body() -> int:
        t0 = time.perf_counter_ns()
        for a in ops:
            await fn(a)
        return time.perf_counter_ns() - t0

    def run() -> int:
        return loop.run_until_complete(body())

    return run


# ---------------------------------------------------------------------- cases


@dataclass
class Case:
    """One timed operation of one library, and every sample taken of it."""

    suite: str
    op: str
    impl: str
    label: str = ""
    status: str = "ok"  # "ok", "not installed", "error"
    detail: str = ""
    make_pass: Callable[[int], Callable[[], int]] | None = None
    check: Callable[[], str | None] | None = None
    n: int = 0
    pass_ns: list[int] = field(default_factory=list)
    cpu_ns: list[int] = field(default_factory=list)  # this thread's CPU time over each pass (contention signal)
    warmup_ns_per_op: list[float] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    run: Callable[[], int] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.suite, self.op)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def ns_per_op(self) -> list[float]:
        return [ns / self.n for ns in self.pass_ns]

    def summary(self) -> dict[str, float] | None:
        xs = self.ns_per_op()
        if not xs:
            return None
        return {
            "median": statistics.median(xs),
            "min": min(xs),
            "max": max(xs),
            "mean": statistics.fmean(xs),
            "stdev": statistics.stdev(xs) if len(xs) > 1 else 0.0,
            "cpu_share_median": statistics.median(c / w for c, w in zip(self.cpu_ns, self.pass_ns, strict=True)),
        }

    def fail(self, stage: str, exc: BaseException) -> None:
        self.status = "error"
        self.detail = f"{stage}: {type(exc).__name__}: {exc}"
        self.run = None


def _timed(run: Callable[[], int], cpu: list[int] | None = None) -> int:
    gc.collect()
    gc.disable()
    try:
        c0 = time.thread_time_ns()
        elapsed = run()
        c1 = time.thread_time_ns()
    finally:
        gc.enable()
    if cpu is not None:
        cpu.append(c1 - c0)
    return elapsed


def calibrate(case: Case, target_ns: int) -> None:
    """Pick N so that one pass lasts about ``target_ns``; the passes taken here are warm-up, not samples.

    N grows from 16 (at most 16x per step, so a slow first pass cannot overshoot) until a pass at N lands
    within a factor 1.5 of the target; the last pass at the final N is one more warm-up.
    """
    assert case.make_pass is not None
    n = 16
    for _ in range(12):
        elapsed = max(_timed(case.make_pass(n)), 1)
        case.warmup_ns_per_op.append(elapsed / n)
        if (
            target_ns / 1.5 <= elapsed <= target_ns * 1.5
            or (n >= MAX_N and elapsed < target_ns)
            or (n <= 8 and elapsed > target_ns)
        ):
            break
        n = max(8, min(MAX_N, n * 16, round(n * target_ns / elapsed)))
    case.n = n
    case.run = case.make_pass(n)
    case.warmup_ns_per_op.append(_timed(case.run) / n)


def run_checks(case: Case, when: str) -> None:
    if case.check is None:
        return
    problem = case.check()
    if problem is not None:
        case.checks.append(f"{when}: {problem}")


def run_cases(cases: list[Case], *, repeats: int, target_ms: float, log: Callable[[str], Any]) -> None:
    """Calibrate every case, then take ``repeats`` round-robin samples of each."""
    target_ns = int(target_ms * 1e6)
    live = [c for c in cases if c.ok]
    for case in live:
        try:
            calibrate(case, target_ns)
            run_checks(case, "before timing")
        except Exception as exc:
            case.fail("calibration", exc)
            continue
        per_op = case.warmup_ns_per_op[-1]
        log(f"  calibrated {case.suite}/{case.op}/{case.impl}: N={case.n} (~{per_op:,.0f} ns/op)")
    live = [c for c in live if c.ok]
    t_start = time.perf_counter()
    for r in range(repeats):
        for case in live:
            if case.run is None:
                continue
            try:
                case.pass_ns.append(_timed(case.run, case.cpu_ns))
            except Exception as exc:
                case.fail(f"repeat {r}", exc)
        if r == 0 or (r + 1) % 5 == 0 or r + 1 == repeats:
            log(f"  round {r + 1}/{repeats} done ({time.perf_counter() - t_start:.1f} s)")
    for case in live:
        if case.ok:
            try:
                run_checks(case, "after timing")
            except Exception as exc:
                case.checks.append(f"after timing: {type(exc).__name__}: {exc}")


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
