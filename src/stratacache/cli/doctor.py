"""``stratacache doctor``: check a deployment's tiers and codec, and explain each finding with its fix."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stratacache.cli._common import EXIT_FINDINGS, EXIT_INTERRUPTED, EXIT_UNAVAILABLE, EXIT_USAGE, print_json, stderr
from stratacache.doctor import CODEC_ENV, run_doctor, split_urls
from stratacache.errors import ConfigError

if TYPE_CHECKING:
    from stratacache.doctor import Report

__all__ = ["doctor"]

_URL_ENV = "STRATACACHE_URL"
_ICONS = {
    "ok": "[green]✓ ok[/green]",
    "info": "[blue]i info[/blue]",
    "warning": "[yellow]! warning[/yellow]",
    "error": "[red]✗ error[/red]",
}


def doctor(
    *,
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url",
            metavar="URL",
            help=f"A tier to check (repeatable; comma- or space-separated lists allowed), e.g. "
            f"sqlite:///var/cache/app.db or redis://host:6379/0 [default: ${_URL_ENV}].",
            show_default=False,
        ),
    ] = None,
    codec: Annotated[
        str | None,
        typer.Option(
            "--codec",
            metavar="NAME",
            envvar=CODEC_ENV,
            help="The codec the application uses (msgpack, json, pickle, with an optional +zstd): pickle needs "
            "$STRATACACHE_SIGNING_KEY [default: msgpack].",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"findings": [...], "ok": bool} as JSON.')] = False,
) -> None:
    """Check a deployment (Redis, SQLite, codec, clocks) and explain each finding with its fix.

    Exit status: 0 no error (warnings allowed), 4 errors found, 3 a tier could not be reached, 2 bad arguments.
    """
    values = list(url or [])
    if not values and os.environ.get(_URL_ENV, "").strip():
        values = [os.environ[_URL_ENV]]
    urls = split_urls(values)
    err = stderr()
    if not urls and codec is None:
        err.print(
            f"[red]error:[/red] nothing to check: pass --url URL (or set ${_URL_ENV}), and --codec NAME",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_USAGE)
    try:
        report = run_doctor(urls, codec=codec)
    except ConfigError as exc:  # a bad URL or codec name: one line, never a traceback
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if as_json:
        print_json(report.to_dict())
    else:
        _render(report, Console())
    for tier in report.unreachable:
        err.print(f"[red]error:[/red] {escape(tier)} could not be reached", highlight=False, soft_wrap=True)
    if report.unreachable:
        raise typer.Exit(EXIT_UNAVAILABLE)
    if not report.ok:
        raise typer.Exit(EXIT_FINDINGS)


def _render(report: Report, console: Console) -> None:
    table = Table(title="stratacache doctor", title_justify="left", show_lines=True)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("finding")
    table.add_column("fix")
    for f in report.findings:
        check = escape(f.id) + (f"\n[dim]{escape(f.tier)}[/dim]" if f.tier else "")
        finding = f"[bold]{escape(f.title)}[/bold]\n{escape(f.detail)}"
        table.add_row(_ICONS[f.severity], check, finding, escape(f.fix))
    console.print(table)
    counts = {s: sum(f.severity == s for f in report.findings) for s in ("error", "warning", "info", "ok")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    style = "bold green" if report.ok else "bold red"
    console.print(f"{'OK' if report.ok else 'PROBLEMS FOUND'}: {summary}", style=style, highlight=False)
