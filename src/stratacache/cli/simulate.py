"""``stratacache simulate``: replay a key trace against eviction policies to size the L1.

matplotlib (the ``sim`` extra) is imported lazily, only by ``--plot``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path  # noqa: TC003 - typer resolves the annotations at run time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stratacache.cli._common import EXIT_ERROR as _EXIT_ERROR
from stratacache.cli._common import EXIT_INTERRUPTED as _EXIT_INTERRUPTED
from stratacache.cli._common import EXIT_USAGE as _EXIT_USAGE
from stratacache.simulate import (
    DEFAULT_POLICIES,
    POLICIES,
    Result,
    TraceError,
    default_capacities,
    missing_policies,
    read_trace,
    simulate,
)

__all__ = ["simulate_command"]

_PLOT_HINT = "--plot needs matplotlib: install stratacache[sim]"


def simulate_command(
    trace: Annotated[
        Path,
        typer.Argument(
            metavar="TRACE",
            help="Key trace: one key per line, or a CSV file with --column; gzip-compressed files are accepted.",
            show_default=False,
        ),
    ],
    *,
    capacity: Annotated[
        list[int] | None,
        typer.Option(
            "--capacity",
            "-c",
            min=1,
            metavar="ENTRIES",
            help="Cache capacity in entries; repeat for several (default: 1% and 10% of the distinct keys).",
            show_default=False,
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            "-p",
            metavar="NAME",
            help=f"Policy to replay; repeat for several. One of: {', '.join(POLICIES)} "
            f"(default: {', '.join(DEFAULT_POLICIES)}; theine only when installed).",
            show_default=False,
        ),
    ] = None,
    column: Annotated[
        str | None,
        typer.Option(
            "--column", metavar="NAME|INDEX", help="Read the trace as CSV and take the keys from this column."
        ),
    ] = None,
    no_header: Annotated[
        bool, typer.Option("--no-header", help="The CSV file has no header row (select --column by index).")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", metavar="PNG", help="Save a plot of hit ratio against capacity (needs matplotlib)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON instead of a table.")] = False,
) -> None:
    """Replay a key trace against eviction policies and compare hit ratios, to size the in-process tier."""
    names = list(dict.fromkeys(policy or DEFAULT_POLICIES))
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise typer.BadParameter(
            f"unknown policy {unknown[0]!r} (choose from {', '.join(POLICIES)})", param_hint="'--policy'"
        )
    err = Console(stderr=True)
    figure_cls = _load_matplotlib() if plot is not None else None
    try:
        keys = read_trace(trace, column, header=not no_header)
    except TraceError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(_EXIT_ERROR) from None
    caps = sorted(set(capacity)) if capacity else default_capacities(keys)
    skipped = missing_policies(names)
    for name, reason in skipped.items():
        err.print(f"[yellow]note:[/yellow] skipping {name}: {escape(reason)}", highlight=False)
    try:
        results = simulate(
            keys, caps, names, progress=None if as_json else lambda msg: err.print(f"[dim]… {msg}[/dim]")
        )
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(_EXIT_INTERRUPTED) from None
    distinct = len(set(keys))
    if as_json:
        doc = {
            "trace": str(trace),
            "requests": len(keys),
            "distinct_keys": distinct,
            "capacities": caps,
            "policies": [name for name in names if name not in skipped],
            "skipped": skipped,
            "results": [r.to_dict() for r in results],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        _render_simulation(trace, len(keys), distinct, results, Console())
    if figure_cls is not None and plot is not None:
        try:
            _plot(figure_cls, results, plot, title=f"{trace.name}: {len(keys):,} requests, {distinct:,} keys")
        except (OSError, ValueError) as exc:
            err.print(
                f"[red]error:[/red] {escape(f'cannot save the plot to {str(plot)!r}: {exc}')}",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(_EXIT_ERROR) from None
        if not as_json:
            err.print(f"plot saved to {escape(str(plot))}", highlight=False)


def _load_matplotlib() -> Any:
    """``matplotlib.figure.Figure``, or exit 2 with the install hint."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        Console(stderr=True).print(f"[red]error:[/red] {escape(_PLOT_HINT)}", highlight=False, soft_wrap=True)
        raise typer.Exit(_EXIT_USAGE) from None
    return Figure


def _plot(figure_cls: Any, results: list[Result], path: Path, *, title: str) -> None:
    """Hit ratio against capacity, one line per policy, saved as PNG (no pyplot: no global state, no display)."""
    fig = figure_cls(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    for name in dict.fromkeys(r.policy for r in results):
        points = sorted((r.capacity, r.hit_ratio * 100) for r in results if r.policy == name)
        style = "--" if name.startswith("opt") else "-"
        ax.plot([c for c, _ in points], [h for _, h in points], style, marker="o", label=name)
    caps = sorted({r.capacity for r in results})
    if len(caps) > 1:
        ax.set_xscale("log")
    ax.set_xticks(caps, labels=[f"{c:,}" for c in caps])
    ax.minorticks_off()
    ax.set_xlabel("capacity (entries)")
    ax.set_ylabel("hit ratio (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title.replace("$", r"\$"))  # a file name is not mathtext
    ax.grid(visible=True, alpha=0.3)
    ax.legend()
    fig.savefig(path, format="png", dpi=100)


def _render_simulation(trace: Path, requests: int, distinct: int, results: list[Result], console: Console) -> None:
    names = list(dict.fromkeys(r.policy for r in results))
    table = Table(
        title=f"Hit ratio by policy: {trace.name}, {requests:,} requests, {distinct:,} distinct keys",
        title_justify="left",
    )
    table.add_column("capacity", justify="right", style="bold")
    table.add_column("% of keys", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    by = {(r.capacity, r.policy): r for r in results}
    for cap in sorted({r.capacity for r in results}):
        row = [f"{cap:,}", f"{cap / distinct:.1%}"]
        row += [f"{by[cap, name].hit_ratio:.2%}" if (cap, name) in by else "-" for name in names]
        table.add_row(*row)
    console.print(table)


# ---------------------------------------------------------------------------------------------- rendering
