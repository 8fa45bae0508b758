"""Results: the machine and package description, the JSON document (every sample) and the markdown table."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.adapters import VERSIONED

if TYPE_CHECKING:
    from benchmarks.harness import Case

REFERENCE = "stratacache"


# ---------------------------------------------------------------------- environment


def _cpuinfo() -> dict[str, Any]:
    info: dict[str, Any] = {"model": platform.processor() or platform.machine()}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return info
    cores: set[tuple[str, str]] = set()
    phys = core = ""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if name == "model name" and "cpuinfo_model" not in info:
            info["model"] = info["cpuinfo_model"] = value
        elif name == "cpu MHz" and "mhz" not in info:
            info["mhz"] = float(value)
        elif name == "flags" and "hypervisor" not in info:
            info["hypervisor"] = "hypervisor" in value.split()
        elif name == "physical id":
            phys = value
        elif name == "core id":
            core = value
            cores.add((phys, core))
    if cores:
        info["physical_cores"] = len(cores)
    return info


def _mount_of(path: Path) -> dict[str, str] | None:
    """The filesystem holding ``path`` (from /proc/mounts), so disk results say what disk they used."""
    try:
        lines = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    best: dict[str, str] | None = None
    resolved = str(path.resolve())
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        device, mount, fstype = parts[0], parts[1], parts[2]
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and (best is None or len(mount) > len(best["mount"])):
            best = {"device": device, "mount": mount, "fstype": fstype}
    return best


def _git() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    status = git("status", "--porcelain", "--", "src")
    return {"commit": git("rev-parse", "HEAD"), "src_dirty": bool(status) if status is not None else None}


def packages() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in VERSIONED:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def environment(tmp: Path | None) -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "cpu": _cpuinfo(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": {
            "version": sys.version,
            "implementation": platform.python_implementation(),
            "build": list(platform.python_build()),
            "compiler": platform.python_compiler(),
            "executable": sys.executable,
        },
        "tmp_dir_filesystem": _mount_of(tmp) if tmp is not None else None,
        "git": _git(),
    }


def loadavg() -> list[float] | None:
    try:
        return list(os.getloadavg())
    except OSError:
        return None


# ---------------------------------------------------------------------- rows


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def rows(cases: list[Case]) -> list[dict[str, Any]]:
    """One row per (suite, operation, peer): the peer's and stratacache's figures and their ratio."""
    refs = {c.key: c for c in cases if c.impl == REFERENCE}
    out: list[dict[str, Any]] = []
    for c in cases:
        if c.impl == REFERENCE:
            continue
        ref = refs.get(c.key)
        s, rs = c.summary(), ref.summary() if ref is not None else None
        out.append(
            {
                "suite": c.suite,
                "op": c.op,
                "peer": c.impl,
                "peer_label": c.label,
                "peer_status": c.status if not c.checks else "check failed",
                "peer_detail": c.detail or "; ".join(c.checks),
                "stratacache_status": (ref.status if not ref.checks else "check failed") if ref else "absent",
                "peer_median": s["median"] if s else None,
                "peer_min": s["min"] if s else None,
                "stratacache_median": rs["median"] if rs else None,
                "stratacache_min": rs["min"] if rs else None,
                "ratio_median": _ratio(rs and rs["median"], s and s["median"]),
                "ratio_min": _ratio(rs and rs["min"], s and s["min"]),
            }
        )
    return out


def case_json(c: Case) -> dict[str, Any]:
    return {
        "suite": c.suite,
        "op": c.op,
        "impl": c.impl,
        "label": c.label,
        "status": c.status,
        "detail": c.detail,
        "checks_failed": c.checks,
        "ops_per_pass": c.n,
        "pass_ns": c.pass_ns,
        "pass_thread_cpu_ns": c.cpu_ns,
        "ns_per_op": c.ns_per_op(),
        "warmup_ns_per_op": c.warmup_ns_per_op,
        "summary_ns_per_op": c.summary(),
    }


# ---------------------------------------------------------------------- markdown


def _ns(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def _fmt_ratio(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def cpu_share(cases: list[dict[str, Any]]) -> float | None:
    """Median, over the in-memory cases, of each case's median (thread CPU time / wall time) per pass.

    Those cases never wait for I/O, so anything below 1.0 is time the timing thread was descheduled: other
    processes competing for the cores.
    """
    shares = [
        c["summary_ns_per_op"]["cpu_share_median"]
        for c in cases
        if c["suite"] in {"l1", "deco"} and c["summary_ns_per_op"] is not None
    ]
    return statistics.median(shares) if shares else None


def _load_line(doc: dict[str, Any]) -> str:
    la = doc["loadavg"]
    start = f"{la['start'][0]:.2f}" if la["start"] else "?"
    end = f"{la['end'][0]:.2f}" if la["end"] else "?"
    share = cpu_share(doc["cases"])
    share_s = f"{share:.0%}" if share is not None else "?"
    return (
        f"- Load: 1-min load average {start} at start, {end} at end; the timing thread held a core for {share_s} "
        "of the in-memory passes' wall time (100% = never descheduled; lower means other processes competed)."
    )


def markdown(doc: dict[str, Any]) -> str:
    env, cfg = doc["machine"], doc["config"]
    py = env["python"]
    cpu = env["cpu"]
    virt = " (virtual machine)" if cpu.get("hypervisor") else ""
    lines = [
        f"# stratacache benchmarks ({doc['started_at']})",
        "",
        (
            f"- Machine: {cpu.get('model')}{virt}, {env['logical_cores']} logical cores "
            f"({env['usable_cores']} usable), {env['platform']}"
        ),
        f"- Python: {py['implementation']} {py['version'].split()[0]} ({py['compiler']})",
        (
            f"- Method: one process; {cfg['repeats']} round-robin repeats of every case; each sample is one pass "
            f"of N operations lasting ~{cfg['target_ms']:g} ms, timed with perf_counter_ns, gc disabled; "
            "ns/op = pass time / N. Medians (and minimums) over the samples."
        ),
        "- Ratio = stratacache median ns/op / peer median ns/op: **< 1 means stratacache is faster**.",
        "- Versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in doc["packages"].items()),
        _load_line(doc),
        "",
        (
            "| stratacache / peer | suite | operation | peer | peer ns/op (median) | peer min "
            "| stratacache ns/op (median) | stratacache min | ratio of mins |"
        ),
        "|---:|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in doc["table"]:
        ratio = f"**{_fmt_ratio(r['ratio_median'])}**" if r["ratio_median"] is not None else "—"
        peer = r["peer"]
        if r["peer_status"] != "ok":
            peer += f" ({r['peer_status']})"
        lines.append(
            f"| {ratio} | {r['suite']} | {r['op']} | {peer} | {_ns(r['peer_median'])} "
            f"| {_ns(r['peer_min'])} | {_ns(r['stratacache_median'])} | {_ns(r['stratacache_min'])} "
            f"| {_fmt_ratio(r['ratio_min'])} |"
        )
    notes = [
        f"- {c['suite']}/{c['op']}/{c['impl']}: {c['status']} {c['detail']} {'; '.join(c['checks_failed'])}"
        for c in doc["cases"]
        if c["status"] != "ok" or c["checks_failed"]
    ]
    configs: dict[str, list[str]] = {}
    for c in doc["cases"]:
        if c["label"]:
            configs.setdefault(f"{c['suite']}: {c['impl']}", [])
            if c["label"] not in configs[f"{c['suite']}: {c['impl']}"]:
                configs[f"{c['suite']}: {c['impl']}"].append(c["label"])
    lines += ["", "Configurations (library defaults unless stated):", ""]
    lines += [f"- {name}: {'; '.join(f'`{lab}`' for lab in labs)}" for name, labs in configs.items()]
    if notes:
        lines += ["", "Problems:", "", *notes]
    return "\n".join(lines) + "\n"
