"""What every scenario shares: its result record (figures and checks), percentiles, bounded waits, servers."""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from tests.support.servers import RedisServer

PASS, FAIL, INFO, NOT_MEASURABLE = "PASS", "FAIL", "info", "NOT MEASURABLE"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Check:
    """One figure held against its bound."""

    figure: str
    value: Any
    bound: str
    passed: bool | None  # None: reported for information, no bound

    @property
    def verdict(self) -> str:
        return INFO if self.passed is None else PASS if self.passed else FAIL


@dataclass
class Result:
    """The outcome of one scenario: its parameters, every figure (JSON) and the checks shown in the table."""

    id: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measurable: bool = True
    seconds: float = 0.0

    def check(self, figure: str, value: Any, bound: str, passed: bool | None) -> None:
        self.checks.append(Check(figure, value, bound, passed))

    def info(self, figure: str, value: Any) -> None:
        self.checks.append(Check(figure, value, "", None))

    @property
    def status(self) -> str:
        if not self.measurable:
            return NOT_MEASURABLE
        return FAIL if any(c.passed is False for c in self.checks) else PASS

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "params": self.params,
            "figures": self.figures,
            "checks": [
                {"figure": c.figure, "value": c.value, "bound": c.bound, "verdict": c.verdict} for c in self.checks
            ],
            "notes": self.notes,
        }


# ---------------------------------------------------------------------------------------------------- numbers


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """``{"n", "p50_ms", "p99_ms", "max_ms"}`` of durations given in seconds."""

    def ms(x: float | None) -> float | None:
        return None if x is None else round(x * 1000, 3)

    return {
        "n": len(seconds),
        "p50_ms": ms(quantile(seconds, 0.5)),
        "p99_ms": ms(quantile(seconds, 0.99)),
        "max_ms": ms(max(seconds) if seconds else None),
    }


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def fmt(value: Any) -> str:
    """A figure as shown in the table."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


# ---------------------------------------------------------------------------------------------------- waits


def pause(seconds: float) -> None:
    """Sleep without being a busy loop (an ``Event`` wait: interruptible, same resolution as ``time.sleep``)."""
    threading.Event().wait(seconds)


def wait_until(cond: Callable[[], bool], timeout: float, step: float = 0.001) -> float | None:
    """Poll ``cond`` until true; return the time it took, ``None`` if ``timeout`` passed first."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            return None
        pause(step)
    return time.monotonic() - t0


def prefix() -> str:
    """A fresh key prefix, so runs never see each other's keys."""
    return f"bf{uuid.uuid4().hex[:10]}:"


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A private ``redis-server`` on a free 127.0.0.1 port, stopped whatever happens."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.support.servers import start_server

    server = start_server("redis")
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------------- environment


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def environment(redis_version: str) -> dict[str, Any]:
    """The machine and versions a run measured (printed above the table)."""

    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    dirty = [line[3:] for line in _git("status", "--porcelain", "--", "src").splitlines()]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "stratacache": version("stratacache"),
        "redis_py": version("redis"),
        "hiredis": version("hiredis"),
        "redis_server": redis_version,
        "git_commit": _git("rev-parse", "--short", "HEAD").strip(),
        "src_uncommitted_changes": dirty,
        "loadavg_before": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def redis_version() -> str:
    """The installed ``redis-server``'s version, or ``not installed``."""
    binary = shutil.which("redis-server")
    if binary is None:
        return "not installed"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    return next((part[2:] for part in out.split() if part.startswith("v=")), out.strip())


def markdown(doc: dict[str, Any]) -> str:
    """The results table of a scenario run (faults or consistency), led by the machine and versions."""
    env = doc["environment"]
    lines = [
        f"Run {doc['started']} ({'quick' if doc['quick'] else 'full'}, {doc['seconds']:.0f} s): "
        f"{env['cpus']} CPUs ({env['cpu_model']}), {env['platform']}, Python {env['python']}, "
        f"redis-server {env['redis_server']}, redis-py {env['redis_py']}, hiredis {env['hiredis']}, "
        f"stratacache {env['stratacache']} at {env['git_commit']}"
        + (
            f" (+ uncommitted changes in {', '.join(env['src_uncommitted_changes'])})"
            if env["src_uncommitted_changes"]
            else ""
        ),
        "",
        "| # | Scenario | Figure | Value | Bound | Result |",
        "|---|---|---|---|---|---|",
    ]
    for r in doc["scenarios"]:
        if r["status"] == NOT_MEASURABLE:
            lines.append(f"| {r['id']} | {r['title']} | — | — | — | **{NOT_MEASURABLE}**: {'; '.join(r['notes'])} |")
            continue
        for i, c in enumerate(r["checks"]):
            title = r["title"] if i == 0 else ""
            verdict = f"**{c['verdict']}**" if c["verdict"] == FAIL else c["verdict"]
            lines.append(
                f"| {r['id'] if i == 0 else ''} | {title} | {c['figure']} | {fmt(c['value'])} | "
                f"{c['bound'] or '—'} | {verdict} |"
            )
    lines.append("")
    verdicts = ", ".join(f"{r['id']}: {r['status']}" for r in doc["scenarios"])
    lines.append(f"Scenarios: {verdicts}. Every figure, with the parameters, is in the JSON file beside this one.")
    return "\n".join(lines) + "\n"
