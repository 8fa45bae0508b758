"""What every scenario shares: its result record (figures and checks), percentiles, bounded waits, servers."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
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


def run_scenarios(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    scenarios: dict[str, Callable[..., list[Result]]],
    options: dict[str, dict[str, Any]] | None = None,
) -> int:
    """Run the scenarios ``args.only`` names (all by default), write ``<out>/<stamp>.json/.md`` and ``latest``.

    ``options[id]`` are extra keyword arguments of one scenario. Returns the exit status: 1 if a figure failed.
    """
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or list(scenarios)
    unknown = [s for s in wanted if s not in scenarios]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}: choose from {', '.join(scenarios)}")
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
            results = scenarios[sid](quick=args.quick, **(options or {}).get(sid, {}))
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
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "")
    text = json.dumps(doc, indent=1, default=str) + "\n"
    table = markdown(doc)
    for name in (stamp, "latest-quick" if args.quick else "latest"):
        (out / f"{name}.json").write_text(text, encoding="utf-8")
        (out / f"{name}.md").write_text(table, encoding="utf-8")
    print(table)
    print(f"written to {out}/{stamp}.json and .md", file=sys.stderr)
    return 1 if any(r["status"] == FAIL for r in doc["scenarios"]) else 0
