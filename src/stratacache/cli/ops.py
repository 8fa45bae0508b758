"""Operate a deployed cache from a terminal: ``stats``, ``inspect``, ``invalidate``, ``top``, ``warm``.

Every command but ``top`` opens the cache's shared tiers from ``--url`` (repeatable, or ``STRATACACHE_URL``: URLs
separated by spaces or commas, L2 first) in ``--namespace`` (or ``STRATACACHE_NAMESPACE``). The command line has
no L1 of its own: what it reads and writes is what every process sharing the tiers sees, and its invalidations
reach their L1s through the backplane.
"""

from __future__ import annotations

import functools
import glob
import importlib
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

import stratacache as sc
from stratacache.cli._common import EXIT_ERROR, EXIT_UNAVAILABLE, EXIT_USAGE, fail, print_json, stderr
from stratacache.metrics.accesslog import read_hot_keys

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from stratacache.core.inspection import EntryInfo
    from stratacache.metrics.scrape import Scrape

__all__ = ["inspect_command", "invalidate_command", "stats_command", "top_command", "warm_command"]

_SETTLE_BUDGET = 3.0  # seconds an invalidation may wait for an unreachable tier before the command fails

Urls = Annotated[
    list[str] | None,
    typer.Option(
        "--url",
        "-u",
        envvar="STRATACACHE_URL",
        metavar="URL",
        help="A shared tier of the cache (sqlite:///path, redis://host:port/0...); repeat for several, L2 first.",
        show_default=False,
    ),
]
Namespace = Annotated[
    str, typer.Option("--namespace", "-n", envvar="STRATACACHE_NAMESPACE", help="The cache's namespace.")
]
Codec = Annotated[
    str, typer.Option("--codec", envvar="STRATACACHE_CODEC", help="The cache's codec (warm encodes with it).")
]
Schema = Annotated[int, typer.Option("--schema", envvar="STRATACACHE_SCHEMA", min=0, help="The cache's schema tag.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


# ---------------------------------------------------------------------------------------------- opening


def _split(urls: list[str] | None) -> list[str]:
    out = [u for value in urls or [] for u in value.replace(",", " ").split()]
    if not out:
        fail("no tier to open: pass --url (sqlite:///path/cache.db, redis://host:6379/0) or set STRATACACHE_URL", 2)
    for url in out:
        if url.split(":", 1)[0].lower() == "memory":
            fail(f"{url}: a memory tier lives inside one process; give the shared tiers (sqlite://, redis://)", 2)
    return out


def _open(urls: list[str] | None, namespace: str, codec: str = "msgpack", schema: int = 0) -> sc.Cache:
    try:
        return sc.Cache(*_split(urls), namespace=namespace, codec=codec, schema=schema)
    except sc.ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except sc.TierError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)


def _key(key: str, json_key: bool) -> str | tuple[Any, ...]:
    if not json_key:
        return key
    try:
        parts = json.loads(key)
    except json.JSONDecodeError as exc:
        fail(f"--json-key: {key!r} is not JSON: {exc}", EXIT_USAGE)
    if not isinstance(parts, list):
        fail(f'--json-key: {key!r} must be a JSON array (a tuple key such as ["user", 42])', EXIT_USAGE)
    return tuple(parts)


def _seconds(x: float | None) -> str:
    if x is None:
        return "-"
    sign, x = ("-" if x < 0 else ""), abs(x)
    if x < 120:
        return f"{sign}{x:.1f} s"
    if x < 7200:
        return f"{sign}{x / 60:.1f} min"
    return f"{sign}{x / 3600:.1f} h"


def _bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GiB"  # pragma: no cover - the loop returns


# ---------------------------------------------------------------------------------------------- stats


def stats_command(
    *,
    url: Urls = None,
    namespace: Namespace = "default",
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics",
            "-m",
            envvar="STRATACACHE_METRICS_URL",
            metavar="URL",
            help="A process's /metrics endpoint (repeat for several): live hit ratios, loads, stale serves.",
            show_default=False,
        ),
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh as a live table until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1, max=3600, help="Seconds between refreshes.")] = 2.0,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="With --watch: stop after this many refreshes.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Entries, bytes and health of each shared tier, and the live counters of the processes using them."""
    endpoints = [u for value in metrics or [] for u in value.replace(",", " ").split()]
    if not url and not endpoints:
        fail("nothing to show: pass --url (the shared tiers) and/or --metrics (processes' /metrics)", EXIT_USAGE)
    cache = _open(url, namespace) if url else None
    try:
        if not watch:
            doc = _stats_once(cache, endpoints, None)
            if as_json:
                print_json(doc["json"])
            else:
                Console().print(doc["view"])
            if doc["down"]:
                raise typer.Exit(EXIT_UNAVAILABLE)
            return
        _watch(cache, endpoints, interval, count, as_json=as_json)
    finally:
        if cache is not None:
            cache.close()


def _watch(cache: sc.Cache | None, endpoints: list[str], interval: float, count: int | None, *, as_json: bool) -> None:
    previous: Scrape | None = None
    shown = 0
    try:
        with Live(console=Console(), auto_refresh=False, transient=False) as live:
            while count is None or shown < count:
                doc = _stats_once(cache, endpoints, previous)
                previous = doc["scrape"]
                if as_json:
                    live.console.print_json(json.dumps(doc["json"], default=str))
                else:
                    live.update(doc["view"], refresh=True)
                shown += 1
                if count is None or shown < count:
                    time.sleep(interval)
    except KeyboardInterrupt:
        return


def _stats_once(cache: sc.Cache | None, endpoints: list[str], previous: Scrape | None) -> dict[str, Any]:
    parts: list[Any] = []
    doc: dict[str, Any] = {}
    down = False
    if cache is not None:
        rows, down = _tier_rows(cache)
        doc["namespace"] = cache.namespace
        doc["tiers"] = rows
        parts.append(_tier_table(cache.namespace, rows))
    current: Scrape | None = None
    if endpoints:
        from stratacache.metrics.scrape import scrape

        try:
            current = scrape(endpoints, timeout=5.0)
        except sc.ConfigError as exc:
            fail(str(exc), EXIT_USAGE)
        except sc.TierUnavailableError as exc:
            fail(str(exc), EXIT_UNAVAILABLE)
        rates = current.rates(previous) if previous is not None else None
        doc["processes"] = _process_doc(current, rates)
        parts.extend(_process_tables(current, rates))
    return {"json": doc, "view": Group(*parts), "down": down, "scrape": current}


def _tier_rows(cache: sc.Cache) -> tuple[list[dict[str, Any]], bool]:
    probe = {i.tier: i.error for i in cache.inspect("\x00stratacache:probe")}  # reaches every tier once
    stats = cache.stats()
    rows, down = [], False
    for t in stats.tiers:
        error = probe.get(t.name)
        down = down or error is not None
        rows.append(
            {
                "tier": t.name,
                "status": "unreachable" if error else "ok",
                "error": error,
                "entries": None if error else t.entries,
                "bytes": None if error else t.bytes,
                "max_bytes": t.max_bytes,
                "breaker": t.breaker,
                "backplane": t.backplane,
            }
        )
    return rows, down


def _tier_table(namespace: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"shared tiers (namespace {escape(namespace)})", title_justify="left")
    for col in ("tier", "status", "entries", "bytes", "max bytes", "breaker", "backplane"):
        table.add_column(col, justify="left" if col in {"tier", "status"} else "right")
    for r in rows:
        status = "[green]ok[/green]" if r["error"] is None else f"[red]unreachable[/red]: {escape(r['error'])}"
        table.add_row(
            r["tier"],
            status,
            "-" if r["entries"] is None else f"{r['entries']:,}",
            _bytes(r["bytes"]),
            _bytes(r["max_bytes"]),
            r["breaker"] or "-",
            r["backplane"] or "-",
        )
    return table


def _process_doc(current: Scrape, rates: Scrape | None) -> dict[str, Any]:
    tiers = []
    for (ns, tier), row in sorted(current.tiers.items()):
        item: dict[str, Any] = {"namespace": ns, "tier": tier, **row, "hit_ratio": current.hit_ratio(ns, tier)}
        if rates is not None:
            item["per_second"] = dict(rates.tiers.get((ns, tier), {}))
        tiers.append(item)
    engine = []
    for ns, row in sorted(current.engine.items()):
        item = {"namespace": ns, **row}
        if rates is not None:
            item["per_second"] = dict(rates.engine.get(ns, {}))
        engine.append(item)
    return {"endpoints": current.endpoints, "tiers": tiers, "engine": engine}


def _process_tables(current: Scrape, rates: Scrape | None) -> list[Table]:
    unit = " /s" if rates is not None else ""
    lookups = Table(
        title=f"lookups in {current.endpoints} process(es){' (rates)' if rates else ' (totals since start)'}",
        title_justify="left",
    )
    for col in ("namespace", "tier", f"hits{unit}", f"misses{unit}", f"errors{unit}", "hit ratio", "evictions"):
        lookups.add_column(col, justify="left" if col in {"namespace", "tier"} else "right")
    for (ns, tier), row in sorted(current.tiers.items()):
        shown = rates.tiers.get((ns, tier), row) if rates is not None else row
        ratio = current.hit_ratio(ns, tier)
        lookups.add_row(
            escape(ns),
            tier,
            f"{shown.get('hit', 0):,.1f}" if rates else f"{shown.get('hit', 0):,.0f}",
            f"{shown.get('miss', 0):,.1f}" if rates else f"{shown.get('miss', 0):,.0f}",
            f"{shown.get('error', 0):,.1f}" if rates else f"{shown.get('error', 0):,.0f}",
            "-" if ratio is None else f"{ratio:.1%}",
            f"{row.get('evictions', 0):,.0f}",
        )
    loads = Table(title="loads", title_justify="left")
    for col in ("namespace", *(f"{c}{unit}" for c in ("loads", "load errors", "stale served", "lock waits"))):
        loads.add_column(col, justify="left" if col == "namespace" else "right")
    for ns, row in sorted(current.engine.items()):
        shown = rates.engine.get(ns, row) if rates is not None else row
        fmt = "{:,.1f}" if rates else "{:,.0f}"
        loads.add_row(
            escape(ns), *(fmt.format(shown.get(c, 0)) for c in ("loads", "load_errors", "stale", "lock_waits"))
        )
    return [lookups, loads]


# ---------------------------------------------------------------------------------------------- inspect


def inspect_command(
    key: Annotated[str, typer.Argument(metavar="KEY", help="The key, as the application passes it (a str).")],
    *,
    url: Urls = None,
    namespace: Namespace = "default",
    json_key: Annotated[
        bool, typer.Option("--json-key", help='KEY is a JSON array naming a tuple key: ["user", 42].')
    ] = False,
    schema: Schema = 0,
    as_json: AsJson = False,
) -> None:
    """Show what each tier holds for KEY: age, TTL left, size, codec, tags and whether they moved since."""
    cache = _open(url, namespace, schema=schema)
    try:
        try:
            infos = cache.inspect(_key(key, json_key))
        except sc.InvalidKeyError as exc:
            fail(str(exc), EXIT_USAGE)
    finally:
        cache.close()
    if as_json:
        print_json({"namespace": namespace, "key": key, "tiers": [i.to_dict() for i in infos]})
    else:
        Console().print(_inspect_table(namespace, key, infos))
    if not any(i.present for i in infos):
        raise typer.Exit(EXIT_UNAVAILABLE if any(i.error for i in infos) else EXIT_ERROR)


def _inspect_table(namespace: str, key: str, infos: list[EntryInfo]) -> Table:
    table = Table(title=f"{escape(key)} in namespace {escape(namespace)}", title_justify="left")
    for col in ("tier", "state", "age", "TTL left", "size", "codec", "tags (generation at write -> now)"):
        table.add_column(col)
    for i in infos:
        if i.error is not None:
            table.add_row(i.tier, f"[red]error[/red]: {escape(i.error)}", "", "", "", "", "")
            continue
        if not i.present:
            table.add_row(i.tier, "[dim]absent[/dim]", "", "", "", "", "")
            continue
        if i.current is None:
            state = "[yellow]present (generations unknown)[/yellow]"
        elif i.current:
            state = "[green]served[/green]"
        elif i.ttl_left is not None and i.ttl_left <= 0:
            state = "[yellow]expired[/yellow]" + (" (stale window)" if (i.stale_left or 0) > 0 else "")
        else:
            state = "[red]superseded[/red] (invalidated or other schema)"
        gens = ", ".join(
            f"{escape(name)} {at}" + ("" if now is None else f" -> {now}" if now != at else " (same)")
            for name, at, now in i.generations
        )
        table.add_row(
            i.tier, state, _seconds(i.age), _seconds(i.ttl_left), _bytes(i.size), f"{i.codec} v{i.schema}", gens
        )
    return table


# ---------------------------------------------------------------------------------------------- invalidate


def invalidate_command(
    *,
    url: Urls = None,
    namespace: Namespace = "default",
    key: Annotated[
        list[str] | None, typer.Option("--key", "-k", metavar="KEY", help="Delete this key (repeat for several).")
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", "-t", metavar="TAG", help="Invalidate every entry with this tag (repeatable)."),
    ] = None,
    whole: Annotated[
        bool,
        typer.Option("--all", help="Invalidate every entry of --namespace and of the namespaces nested below it."),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Delete keys, invalidate tags or a whole namespace, in every process sharing the tiers."""
    if not key and not tag and not whole:
        fail("nothing to invalidate: pass --key, --tag or --all", EXIT_USAGE)
    cache = _open(url, namespace)
    try:
        try:
            deleted = cache.delete_many(key) if key else 0
            if tag:
                cache.invalidate_tags(*tag)
            if whole:
                cache.clear()
        except (sc.InvalidKeyError, sc.ConfigError) as exc:
            fail(str(exc), EXIT_USAGE)
        except sc.TierError as exc:
            fail(f"the invalidation failed: {exc}", EXIT_ERROR)
        pending = _settle(cache)
    finally:
        cache.close()
    if as_json:
        print_json(
            {
                "namespace": namespace,
                "keys": key or [],
                "deleted": deleted,
                "tags": tag or [],
                "namespace_invalidated": whole,
                "undelivered": pending,
            }
        )
    elif not pending:
        Console().print(_invalidated(namespace, key or [], deleted, tag or [], whole=whole), highlight=False)
    if pending:
        tiers = ", ".join(f"{name} ({n})" for name, n in pending.items())
        fail(f"not delivered: {tiers} could not be reached within {_SETTLE_BUDGET:.0f} s; run it again", 3)


def _invalidated(namespace: str, keys: list[str], deleted: int, tags: list[str], *, whole: bool) -> str:
    parts = []
    if keys:
        parts.append(f"{deleted} of {len(keys)} key(s) deleted")
    if tags:
        parts.append(f"{len(tags)} tag(s) invalidated")
    if whole:
        parts.append(f"namespace {namespace!r} and below invalidated")
    return "; ".join(parts)


def _settle(cache: sc.Cache) -> dict[str, int]:
    """Wait (bounded) until invalidations journaled for an unreachable tier are delivered; what is left over."""
    deadline = time.monotonic() + _SETTLE_BUDGET
    while True:
        pending = {t.name: t.pending_invalidations for t in cache.stats().tiers if t.pending_invalidations}
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.1)
        cache.get("\x00stratacache:probe")  # a read replays the journal when the tier is back


# ---------------------------------------------------------------------------------------------- top


def top_command(
    log: Annotated[
        list[str] | None,
        typer.Option(
            "--log",
            "-l",
            envvar="STRATACACHE_ACCESS_LOG",
            metavar="PATH",
            help="An access-log file written by AccessLog(path=...); globs and repeats allowed.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-k", min=1, max=10_000, help="How many keys to show.")] = 20,
    last: Annotated[
        int | None, typer.Option("--last", min=1, help="Only the last N sampled keys of each file (recent traffic).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """The hottest keys, from the sampled access logs the caches write (Cache(access_log=AccessLog(path=...)))."""
    paths = _log_paths(log)
    try:
        hot, total = read_hot_keys(paths, limit, last=last)
    except OSError as exc:
        fail(f"cannot read the access log: {exc}", EXIT_ERROR)
    if as_json:
        print_json(
            {
                "files": [str(p) for p in paths],
                "samples": total,
                "keys": [{"key": h.key, "samples": h.count, "share": h.share} for h in hot],
            }
        )
        return
    table = Table(title=f"hottest keys: {total:,} samples from {len(paths)} file(s)", title_justify="left")
    for col, justify in (("#", "right"), ("key", "left"), ("samples", "right"), ("share", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for rank, h in enumerate(hot, 1):
        table.add_row(str(rank), escape(h.key), f"{h.count:,}", f"{h.share:.1%}")
    Console().print(table)


def _log_paths(log: list[str] | None) -> list[Path]:
    patterns = [p for value in log or [] for p in value.split()]
    if not patterns:
        fail("no access log: pass --log PATH or set STRATACACHE_ACCESS_LOG", EXIT_USAGE)
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]  # noqa: PTH207
        if not matches:
            fail(f"no access log matches {pattern!r}", EXIT_ERROR)
        for m in matches:
            path = Path(m)
            if not path.is_file():
                fail(f"no such access log: {m}", EXIT_ERROR)
            paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------- warm


def warm_command(
    *,
    url: Urls = None,
    namespace: Namespace = "default",
    keys: Annotated[
        Path | None, typer.Option("--keys", metavar="FILE", help="Keys to warm, one per line ('-': stdin).")
    ] = None,
    loader: Annotated[
        str | None,
        typer.Option(
            "--loader",
            metavar="MODULE:FUNCTION",
            help="With --keys: FUNCTION(key) returns the value. Alone: FUNCTION() yields (key, value) pairs.",
        ),
    ] = None,
    jsonl: Annotated[
        Path | None,
        typer.Option("--jsonl", metavar="FILE", help='Records {"key":..., "value":..., "ttl":..., "tags":[...]}.'),
    ] = None,
    ttl: Annotated[float | None, typer.Option("--ttl", min=0.001, help="Seconds to live (default: 1 hour).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", metavar="TAG", help="Tag every entry.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Load and store even keys that are cached.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Loads running at once.")] = 4,
    codec: Codec = "msgpack",
    schema: Schema = 0,
    as_json: AsJson = False,
) -> None:
    """Fill the shared tiers ahead of traffic: keys from a file and a loader, a loader alone, or JSON records."""
    jobs = _warm_jobs(keys, loader, jsonl)
    cache = _open(url, namespace, codec, schema)
    ttl_ = 3600.0 if ttl is None else ttl
    tags = tuple(tag or ())
    counts = {"loaded": 0, "cached": 0, "failed": 0}
    errors: list[str] = []
    started = time.monotonic()

    def run(job: tuple[Any, Callable[[], Any], float | None, tuple[str, ...]]) -> str:
        k, load, job_ttl, job_tags = job
        try:
            if not force and cache.get_many([k]):
                return "cached"
            cache.set(k, load(), ttl=job_ttl or ttl_, tags=(*tags, *job_tags))
        except Exception as exc:
            if len(errors) < 10:
                errors.append(f"{k!r}: {type(exc).__name__}: {exc}")
            return "failed"
        return "loaded"

    try:
        with ThreadPoolExecutor(workers) as pool:
            for outcome in pool.map(run, jobs):
                counts[outcome] += 1
    except _JobError as exc:
        fail(str(exc), EXIT_USAGE)
    finally:
        cache.close()
    elapsed = time.monotonic() - started
    if as_json:
        print_json({**counts, "seconds": round(elapsed, 3), "errors": errors})
    else:
        Console().print(
            f"warmed {counts['loaded']:,} key(s), {counts['cached']:,} already cached, "
            f"{counts['failed']:,} failed in {elapsed:.2f} s",
            highlight=False,
        )
        for e in errors:
            stderr().print(f"[red]failed[/red] {escape(e)}", highlight=False)
    if counts["failed"]:
        raise typer.Exit(EXIT_ERROR)


class _JobError(Exception):
    """Bad warm input found while reading it (a malformed record, a loader yielding non-pairs)."""


def _warm_jobs(
    keys: Path | None, loader: str | None, jsonl: Path | None
) -> Iterator[tuple[Any, Callable[[], Any], float | None, tuple[str, ...]]]:
    if jsonl is not None:
        if keys is not None or loader is not None:
            fail("--jsonl carries keys and values itself: do not combine it with --keys or --loader", EXIT_USAGE)
        return _jsonl_jobs(_lines(jsonl))
    if loader is None:
        fail("nothing to warm: pass --keys FILE --loader MODULE:FUNCTION, --loader alone, or --jsonl FILE", 2)
    fn = _import(loader)
    if keys is not None:
        return ((k, functools.partial(fn, k), None, ()) for k in _lines(keys) if k)
    return _pair_jobs(fn)


def _lines(path: Path) -> Iterator[str]:
    if str(path) == "-":
        return (line.rstrip("\r\n") for line in sys.stdin)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}", EXIT_USAGE)
    return iter(text.splitlines())


def _jsonl_jobs(lines: Iterator[str]) -> Iterator[tuple[Any, Callable[[], Any], float | None, tuple[str, ...]]]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _JobError(f"line {n}: not JSON: {exc}") from None
        if not isinstance(rec, dict) or "key" not in rec or "value" not in rec:
            raise _JobError(f'line {n}: expected {{"key": ..., "value": ...}}')
        key = tuple(rec["key"]) if isinstance(rec["key"], list) else rec["key"]
        ttl = rec.get("ttl")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0):
            raise _JobError(f"line {n}: ttl must be a positive number of seconds")
        tags = rec.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _JobError(f"line {n}: tags must be a list of strings")
        value = rec["value"]
        yield key, _constant(value), ttl, tuple(tags)


def _pair_jobs(fn: Callable[[], Any]) -> Iterator[tuple[Any, Callable[[], Any], float | None, tuple[str, ...]]]:
    for item in fn():
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise _JobError(f"the loader must yield (key, value) pairs, got {item!r}")
        key, value = item
        yield key, _constant(value), None, ()


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _import(spec: str) -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        fail(f"--loader must be MODULE:FUNCTION, got {spec!r}", EXIT_USAGE)
    if "" not in sys.path:
        sys.path.insert(0, "")  # the current directory, as `python -m` and uvicorn do
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        fail(f"cannot import {spec!r}: {exc}", EXIT_USAGE)
    if not callable(obj):
        fail(f"{spec!r} is not callable", EXIT_USAGE)
    return obj  # type: ignore[no-any-return]
