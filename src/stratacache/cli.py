"""The ``stratacache`` command line (``stratacache demo``), built on typer and rich from the ``cli`` extra.

typer and rich are imported here and nowhere else in the package. Without them, ``stratacache`` prints how to
install the extra and exits with status 2.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, NoReturn

from stratacache.demo import DemoConfig, DemoResult, run_demo

try:
    import typer
    from rich.console import Console
    from rich.table import Table
except ImportError as exc:  # pragma: no cover - exercised by installs without the cli extra
    _IMPORT_ERROR: ImportError | None = exc
else:
    _IMPORT_ERROR = None

if TYPE_CHECKING:
    from stratacache.demo import PhaseResult

__all__ = ["main", "make_app"]

_INSTALL_HINT = "the stratacache command line needs typer and rich: install stratacache[cli]"
_EXIT_STALE = 1
_EXIT_ERROR = 1
_EXIT_USAGE = 2
_EXIT_INTERRUPTED = 130

_DEFAULTS = DemoConfig()


def demo(
    *,
    duration: Annotated[
        float,
        typer.Option(
            "--duration", min=0.05, max=3600.0, metavar="SECONDS", help="Seconds each phase (uncached, cached) runs."
        ),
    ] = _DEFAULTS.duration,
    rows: Annotated[
        int, typer.Option("--rows", min=10, max=10_000_000, metavar="N", help="Rows in the application database.")
    ] = _DEFAULTS.rows,
    threads: Annotated[
        int, typer.Option("--threads", min=1, max=256, metavar="N", help="Reader threads.")
    ] = _DEFAULTS.threads,
    write_rate: Annotated[
        float,
        typer.Option("--write-rate", min=0.0, max=100_000.0, metavar="PER_SECOND", help="Row updates per second."),
    ] = _DEFAULTS.write_rate,
    db_latency_ms: Annotated[
        float,
        typer.Option(
            "--db-latency-ms",
            min=0.0,
            max=1000.0,
            metavar="MS",
            help="Modelled network round trip added to every database query (0: the raw local SQLite file).",
        ),
    ] = _DEFAULTS.db_latency * 1000,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", min=0, max=2**63 - 1, metavar="N", help="Seed of the data and of the request sequences."
        ),
    ] = _DEFAULTS.seed,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of a table.")] = False,
) -> None:
    """Run a read-heavy load against a SQLite database, uncached then through stratacache, and compare.

    Exits with status 1 if any stale read was observed.
    """
    try:
        config = DemoConfig(
            rows=rows,
            duration=duration,
            threads=threads,
            write_rate=write_rate,
            db_latency=db_latency_ms / 1000,
            seed=seed,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    err = Console(stderr=True)
    try:
        result = run_demo(config, progress=None if as_json else lambda msg: err.print(f"[dim]… {msg}[/dim]"))
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(_EXIT_INTERRUPTED) from None
    except Exception as exc:  # a demo failure is reported as one line, never as a traceback
        err.print(f"[red]error:[/red] the demo failed: {type(exc).__name__}: {exc}", highlight=False)
        raise typer.Exit(_EXIT_ERROR) from None
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        _render(result, Console())
    if not result.ok:
        raise typer.Exit(_EXIT_STALE)


# ---------------------------------------------------------------------------------------------- rendering


def _int(n: int) -> str:
    return f"{n:,}"


def _us(us: float) -> str:
    return f"{us:,.1f} µs" if us < 1000 else f"{us / 1000:,.2f} ms"


def _times(x: float) -> str:
    if x <= 0:
        return "-"
    if 0.95 <= x < 1.05:
        return "about the same"
    return f"{x:,.1f}x faster" if x >= 1 else f"{1 / x:,.1f}x slower"


def _render(result: DemoResult, console: Console) -> None:
    cfg, u, c = result.config, result.uncached, result.cached
    latency = f"+{cfg.db_latency * 1000:g} ms modelled round trip" if cfg.db_latency else "no added latency"
    title = (
        f"stratacache demo: {cfg.rows:,} rows, Zipf s={cfg.zipf_s:g}, {cfg.threads} readers + 1 writer "
        f"({cfg.write_rate:g} writes/s), {cfg.duration:g} s per phase.\n"
        f"Database: SQLite, {latency} per query. Cache: MemoryTier + SQLiteTier."
    )
    table = Table(title=title, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("uncached", justify="right")
    table.add_column("stratacache", justify="right")
    table.add_column("cached vs uncached", justify="right")
    table.add_row("requests", _int(u.requests), _int(c.requests), "")
    table.add_row("throughput (req/s)", f"{u.throughput:,.0f}", f"{c.throughput:,.0f}", _times(result.speedup))
    table.add_row(
        "database queries",
        _int(u.db_queries),
        _int(c.db_queries),
        f"{result.db_query_reduction:.1%} fewer",
    )
    table.add_row("hit ratio (any tier)", "-", f"{c.hit_ratio:.1%}", "")
    for tier in c.tiers:
        table.add_row(
            f"  hit ratio {tier.name}",
            "-",
            f"{tier.hit_ratio:.1%}",
            f"{_int(tier.hits)} hit, {_int(tier.misses)} miss",
        )
    table.add_row("p50 latency", _us(u.p50_us), _us(c.p50_us), _times(result.p50_speedup))
    table.add_row("p99 latency", _us(u.p99_us), _us(c.p99_us), _times(result.p99_speedup))
    table.add_row("writes", _int(u.writes), _int(c.writes), "")
    table.add_row("stale reads", _stale(u), _stale(c), "")
    console.print(table)
    for phase in (u, c):
        for ex in phase.stale_examples:
            console.print(
                f"[red]stale[/red] ({phase.name}): row {ex.row_id} returned version {ex.got} "
                f"after version {ex.due} was written and invalidated",
                highlight=False,
            )
    style = "bold green" if result.ok else "bold red"
    console.print(result.verdict(), style=style, highlight=False)


def _stale(phase: PhaseResult) -> str:
    text = _int(phase.stale_reads)
    if phase.wrong_rows:
        text += f" (+{phase.wrong_rows:,} wrong rows)"
    return f"[red]{text}[/red]" if phase.stale_reads or phase.wrong_rows else f"[green]{text}[/green]"


# ---------------------------------------------------------------------------------------------- entry points


def make_app() -> typer.Typer:
    """The typer application (``stratacache --help``).

    Raises:
        ImportError: typer or rich is not installed.
    """
    if _IMPORT_ERROR is not None:
        raise _IMPORT_ERROR
    app = typer.Typer(
        name="stratacache",
        help="stratacache: a correct-first multi-tier cache. Try `stratacache demo`.",
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root() -> None:
        """stratacache: a correct-first multi-tier cache."""

    app.command("demo")(demo)
    return app


def _missing_extra() -> NoReturn:
    sys.stderr.write(_INSTALL_HINT + "\n")
    raise SystemExit(_EXIT_USAGE)


def main() -> None:
    """Console entry point of ``stratacache``."""
    try:
        app = make_app()
    except ImportError:
        _missing_extra()
    app()


if __name__ == "__main__":
    main()
