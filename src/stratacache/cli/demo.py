"""``stratacache demo``: the cache in front of a real database, measured against no cache."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stratacache.cli._common import EXIT_ERROR as _EXIT_ERROR
from stratacache.cli._common import EXIT_INTERRUPTED as _EXIT_INTERRUPTED
from stratacache.demo import DemoConfig, DemoError, DemoResult, RedisDemoResult, run_demo, run_redis_demo

if TYPE_CHECKING:
    from stratacache.demo import PhaseResult, RedisOptions, WorkerResult

__all__ = ["demo"]

_EXIT_STALE = 1
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
    ttl: Annotated[
        float | None,
        typer.Option(
            "--ttl",
            min=0.01,
            max=86_400.0,
            metavar="SECONDS",
            help=f"Seconds a cached row lives [default: {_DEFAULTS.ttl:g}; with --redis, the cache's own unless "
            "one of --ttl, --stale-while-revalidate, --early-refresh is given].",
            show_default=False,
        ),
    ] = None,
    stale_while_revalidate: Annotated[
        float | None,
        typer.Option(
            "--stale-while-revalidate",
            min=0.0,
            max=86_400.0,
            metavar="SECONDS",
            help="LoadPolicy of the cached phase: serve a row that expired less than this long ago at once, on "
            "purpose, while one background refresh replaces it (0: off). Invalidated rows are never served "
            f"[default: {_DEFAULTS.stale_while_revalidate:g}; with --redis, no policy unless one of these three "
            "options is given].",
            show_default=False,
        ),
    ] = None,
    early_refresh: Annotated[
        float | None,
        typer.Option(
            "--early-refresh",
            min=0.0,
            max=100.0,
            metavar="BETA",
            help="LoadPolicy of the cached phase: XFetch beta, refresh hot rows in the background just before "
            f"they expire (0: off) [default: {_DEFAULTS.early_refresh:g}; with --redis, see --ttl].",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of a table.")] = False,
    redis: Annotated[
        str | None,
        typer.Option(
            "--redis",
            metavar="URL",
            help="Share a Redis L2 (redis://host:port/db) between two worker processes, each with its own L1 "
            "and --threads readers, and blackhole Redis for up to 3 s mid-phase through a local fault proxy "
            "(the server is not touched; keys go under a unique prefix, deleted afterwards).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a read-heavy load against a SQLite database, uncached then through stratacache, and compare.

    Exits with status 1 if any stale read was observed (with --redis: an error reached a caller, or a read was
    staler than the bounds of cross-process coherence).
    """
    try:
        config = DemoConfig(
            rows=rows,
            duration=duration,
            threads=threads,
            write_rate=write_rate,
            db_latency=db_latency_ms / 1000,
            seed=seed,
            ttl=_DEFAULTS.ttl if ttl is None else ttl,
            stale_while_revalidate=(
                _DEFAULTS.stale_while_revalidate if stale_while_revalidate is None else stale_while_revalidate
            ),
            early_refresh=_DEFAULTS.early_refresh if early_refresh is None else early_refresh,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    err = Console(stderr=True)
    progress = None if as_json else lambda msg: err.print(f"[dim]… {escape(msg)}[/dim]", highlight=False)
    result: DemoResult | RedisDemoResult
    try:
        if redis is not None:
            explicit = (ttl, stale_while_revalidate, early_refresh) != (None, None, None)
            result = run_redis_demo(config, redis, progress=progress, policy=explicit)
        else:
            result = run_demo(config, progress=progress)
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(_EXIT_INTERRUPTED) from None
    except DemoError as exc:  # a bad --redis URL, an unreachable server: one line, never a traceback
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(_EXIT_ERROR) from None
    except Exception as exc:  # a demo failure is reported as one line, never as a traceback
        msg = f"the demo failed: {type(exc).__name__}: {exc}"
        err.print(f"[red]error:[/red] {escape(msg)}", highlight=False, soft_wrap=True)
        raise typer.Exit(_EXIT_ERROR) from None
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    elif isinstance(result, RedisDemoResult):
        _render_redis(result, Console())
    else:
        _render(result, Console())
    if not result.ok:
        raise typer.Exit(_EXIT_STALE)


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
        f"Database: SQLite, {latency} per query. Cache: MemoryTier + SQLiteTier, {_policy(cfg)}."
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
    table.add_row("stale serves on purpose", "-", _int(c.stale_served), "expired entries only")
    table.add_row("background refreshes", "-", _int(c.refreshes), _failed(c.refresh_errors))
    table.add_row("loader calls", _int(u.db_queries), _int(c.loads), f"{_int(c.loads_saved)} saved")
    table.add_row("  saved by single-flight", "-", _int(c.coalesced), "joined a load")
    if c.lock_waits or c.load_timeouts:
        table.add_row("lease waits", "-", _int(c.lock_waits), f"{_int(c.load_timeouts)} load timeouts")
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


def _render_redis(result: RedisDemoResult, console: Console) -> None:
    cfg, o = result.config, result.options
    u, c = result.uncached, result.cached
    latency = f"+{cfg.db_latency * 1000:g} ms modelled round trip" if cfg.db_latency else "no added latency"
    title = (
        f"stratacache demo --redis: {cfg.rows:,} rows, Zipf s={cfg.zipf_s:g}, {len(c)} processes x {cfg.threads} "
        f"readers + 1 writer in the parent ({cfg.write_rate:g} writes/s), {cfg.duration:g} s per phase.\n"
        f"Database: SQLite, {latency} per query. Cache per process: MemoryTier + RedisTier({result.redis}, "
        f"through a fault proxy; timeout {o.timeout * 1000:g} ms, heartbeat {o.heartbeat:g} s, "
        f"breaker_open_for {o.breaker_open_for:g} s, outage_l1_ttl {o.outage_l1_ttl:g} s), {_redis_policy(o)}. "
        "The writer invalidates through a cache of its own: every L1 is kept coherent by the Redis backplane alone."
    )
    table = Table(title=title, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("uncached (both)", justify="right")
    for p in c:
        table.add_column(f"worker {p.index + 1} (pid {p.pid})", justify="right")
    table.add_column("stratacache (both)", justify="right")

    def row(label: str, uncached: str, per: list[str], total: str) -> None:
        table.add_row(label, uncached, *per, total)

    tot = result.total
    row("requests", _int(tot(u, "requests")), [_int(p.requests) for p in c], _int(tot(c, "requests")))
    row(
        "throughput (req/s)",
        f"{result.throughput(u):,.0f}",
        [f"{_ratio(p.requests, p.seconds):,.0f}" for p in c],
        f"{result.throughput(c):,.0f}",
    )
    row("database queries", _int(tot(u, "db_queries")), [_int(p.db_queries) for p in c], _int(tot(c, "db_queries")))
    row("hit ratio (any tier)", "-", [f"{p.hit_ratio:.1%}" for p in c], "")
    for i, name in enumerate(t.name for t in c[0].tiers):
        row(
            f"  hit ratio {name}",
            "-",
            [f"{p.tiers[i].hit_ratio:.1%} ({_int(p.tiers[i].hits)} hit)" for p in c],
            "",
        )
    row("p50 latency", _us(_worst(u, "p50_us")), [_us(p.p50_us) for p in c], "")
    row("p99 latency", _us(_worst(u, "p99_us")), [_us(p.p99_us) for p in c], "")
    row("errors raised to readers", _int(tot(u, "errors")), [_int(p.errors) for p in c], _int(tot(c, "errors")))
    row("stale reads", _int(tot(u, "stale_reads")), [_int(p.stale_reads) for p in c], _int(result.stale_reads))
    for label, attr in (
        ("stale serves on purpose", "stale_served"),
        ("background refreshes", "refreshes"),
        ("  failed", "refresh_errors"),
        ("loader calls", "loads"),
        ("  saved by single-flight", "coalesced"),
        ("  saved by the cache", "loads_saved"),
    ):
        uncached = _int(tot(u, "db_queries")) if attr == "loads" else "-"
        row(label, uncached, [_int(getattr(p, attr)) for p in c], _int(tot(c, attr)))
    if tot(c, "lock_waits") or tot(c, "load_timeouts"):
        row("lease waits", "-", [_int(p.lock_waits) for p in c], _int(tot(c, "lock_waits")))
        row("load timeouts", "-", [_int(p.load_timeouts) for p in c], _int(tot(c, "load_timeouts")))
    row("backplane messages received", "-", [_int(p.backplane_received) for p in c], "")
    row("rows seen at a newer version", "-", [_int(p.fresh_versions) for p in c], "")
    row("backplane links lost (L1 flushed)", "-", [_int(p.backplane_losses) for p in c], "")
    row("breaker openings", "-", [_int(p.breaker_opened) for p in c], "")
    console.print(table)
    console.print(
        f"writer: {result.writers[1].writes:,} writes (commit, then invalidate_tags), "
        f"{result.writers[1].errors} error(s), slowest invalidation {result.writers[1].max_invalidate_ms:,.1f} ms",
        highlight=False,
    )
    _render_outage(result, console)
    for p in c:
        for w in p.windows:
            for ex in w.examples[:1]:
                console.print(
                    f"[yellow]lag[/yellow] (worker {p.index + 1}): row {ex.row_id} returned version {ex.got} "
                    f"after version {ex.due} was written and invalidated",
                    highlight=False,
                )
        for message in p.error_examples:
            console.print(f"[red]error[/red] (worker {p.index + 1}): {escape(message)}", highlight=False)
    style = "bold green" if result.ok else "bold red"
    console.print(result.verdict(), style=style, highlight=False)


def _render_outage(result: RedisDemoResult, console: Console) -> None:
    o = result.outage
    table = Table(
        title=f"Injected outage: Redis blackholed by the fault proxy from {o.began:.2f} s to {o.ended:.2f} s "
        f"({o.seconds:.1f} s; connections stay open, nothing is answered)",
        title_justify="left",
    )
    table.add_column("", style="bold")
    for w in o.windows:
        table.add_column(f"{w.name} ({w.start:.1f}-{w.end:.1f} s)", justify="right")
    table.add_row("requests/s", *(f"{w.throughput:,.0f}" for w in o.windows))
    table.add_row("database queries/s", *(f"{w.db_rate:,.0f}" for w in o.windows))
    table.add_row("database queries per request", *(f"{_ratio(w.db_queries, w.requests):.2f}" for w in o.windows))
    table.add_row("writes", *(_int(w.writes) for w in o.windows))
    errors = [f"[green]{w.errors}[/green]" if not w.errors else f"[red]{w.errors}[/red]" for w in o.windows]
    table.add_row("errors raised to callers", *errors)
    table.add_row("stale reads (strict)", *(_int(w.stale_reads) for w in o.windows))
    table.add_row(
        "worst staleness",
        *(f"{w.max_staleness * 1000:,.1f} ms" if w.stale_reads else "-" for w in o.windows),
    )
    console.print(table)
    for proc, path in o.breaker_paths:
        console.print(f"breaker, {proc}: {' -> '.join(path) or '-'}", highlight=False)
    detection = f"{o.detection * 1000:,.0f} ms" if o.detection is not None else "never"
    recovery = f"{o.recovery:.2f} s" if o.recovery is not None else "not recovered"
    console.print(
        f"outage detected (every worker's breaker open) after {detection}; recovery (every breaker closed, "
        f"every backplane resubscribed) {recovery} after the heal",
        highlight=False,
    )
    console.print(
        f"Bounded staleness across processes: a read counts as stale if it started after a newer version's "
        f"invalidation had returned in the writer. The backplane is asynchronous, so an L1 in another process may "
        f"lag by up to {result.lag_bound * 1000:,.0f} ms (1.5 heartbeats, then the link counts as lost and the L1 "
        f"is flushed); around the outage up to {result.outage_bound:g} s (that, then outage_l1_ttl).",
        highlight=False,
        style="dim",
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def _worst(phase: tuple[WorkerResult, ...], attr: str) -> float:
    return max((float(getattr(p, attr)) for p in phase), default=0.0)


def _policy(cfg: DemoConfig) -> str:
    """The cached phase's TTL and LoadPolicy, in words."""
    parts = [f"ttl {cfg.ttl:g} s"]
    if cfg.stale_while_revalidate:
        parts.append(f"stale_while_revalidate {cfg.stale_while_revalidate:g} s")
    if cfg.early_refresh:
        parts.append(f"early_refresh {cfg.early_refresh:g}")
    return ", ".join(parts)


def _redis_policy(o: RedisOptions) -> str:
    if o.policy is None:
        return "default TTL, no LoadPolicy"
    parts = [f"ttl {o.ttl:g} s" if o.ttl is not None else "default TTL"]
    if o.policy.stale_while_revalidate:
        parts.append(f"stale_while_revalidate {o.policy.stale_while_revalidate:g} s")
    if o.policy.early_refresh:
        parts.append(f"early_refresh {o.policy.early_refresh:g}")
    return ", ".join(parts)


def _failed(n: int) -> str:
    return f"[red]{n:,} failed[/red]" if n else "0 failed"


def _stale(phase: PhaseResult) -> str:
    text = _int(phase.stale_reads)
    if phase.wrong_rows:
        text += f" (+{phase.wrong_rows:,} wrong rows)"
    return f"[red]{text}[/red]" if phase.stale_reads or phase.wrong_rows else f"[green]{text}[/green]"
