"""The ``metrics-overhead`` suite: what exporting metrics and traces costs the read path (issue 8).

Two reads, each on one cache whose instrumentation is switched between timed passes:

- **L1 hit**: ``Cache(MemoryTier(...))`` with 10,000 keys pre-filled, passes of gets in a fixed shuffled order,
  with nothing registered, with the Prometheus collector registered (``CacheCollector`` on its own registry,
  scraped once before the pass), and with ``stratacache.metrics.otel.instrument`` (metrics and traces, SDK
  providers, every span sampled). Target: ≤ 5% slower. The collector and the observable instruments only run at
  scrape/collection time, and the L1 is never traced, so the expected overhead is ~0%.
- **L2 hit**: ``Cache(SQLiteTier(path, max_bytes=None))`` without an L1 (every get a SQLite hit through the engine)
  and, when a ``redis-server`` binary is found (started as for the ``redis`` suite), ``Cache(RedisTier(url))``
  without an L1: nothing installed, and ``instrument`` with traces whose spans are sampled (SDK ``TracerProvider``,
  ``BatchSpanProcessor`` to an exporter that drops them), not sampled (SDK, ``ALWAYS_OFF`` sampler), with the SDK
  installed but no global provider set yet (the tracer hands out a shared no-op; with the API alone no tracer is
  installed at all, which costs nothing), and sampled with ``tier_spans=False`` (loads
  traced, tier calls not). Target: ≤ 2% slower.

Method: every round runs one pass of every variant of a read, in an order shuffled each round (seeded: no variant
always runs first or after the same neighbour); ``gc`` is off during a pass. The overhead of a variant is the median
over rounds of (its pass time / the pass time of nothing installed, same round) - 1. A second "nothing installed"
variant (A/A) shows the noise floor of the figures. Timing thresholds are reported here, never asserted in tests.
"""

from __future__ import annotations

import gc
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import servers

if TYPE_CHECKING:
    from collections.abc import Callable

SUITE = "metrics-overhead"
N_KEYS = 10_000
L1_GETS = 50_000  # operations per pass
SQLITE_GETS = 2_000
REDIS_GETS = 500
ROUNDS = 41
QUICK_ROUNDS = 3
TTL = 3_600
SEED = 20_240_608
L1_TARGET = 0.05
L2_TARGET = 0.02
BARE = "nothing installed"
CONTROL = "nothing installed (A/A control)"


def key_of(i: int) -> str:
    return f"user:{i:05d}"


def value_of(i: int) -> dict[str, Any]:
    return {"id": i, "name": f"user-{i}", "active": True}


@dataclass
class Variant:
    name: str
    setup: Callable[[], Callable[[], Any]]  # installs the variant; returns its teardown
    samples_ns: list[float] = field(default_factory=list)  # per operation, one per round
    problem: str = ""


@dataclass
class Read:
    name: str
    label: str
    target: float
    get: Callable[[str], Any]
    ops: list[str]
    variants: list[Variant]
    check: Callable[[], str | None]


def _noop() -> Callable[[], Any]:
    return lambda: None


def _pass(get: Callable[[str], Any], ops: list[str]) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for k in ops:
            get(k)
        return (time.perf_counter_ns() - t0) / len(ops)
    finally:
        gc.enable()


class _Otel:
    """SDK providers (when installed): a metric reader, a sampled and an unsampled tracer provider."""

    def __init__(self) -> None:
        self.problem = ""
        self.exported = 0
        self.shutdowns: list[Callable[[], Any]] = []
        try:
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
            from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
        except ImportError as exc:
            self.problem = f"opentelemetry-sdk not installed ({exc})"
            return
        owner = self

        class Dropping(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                owner.exported += len(spans)
                return SpanExportResult.SUCCESS

        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.sampled = TracerProvider()
        self.sampled.add_span_processor(BatchSpanProcessor(Dropping()))
        self.unsampled = TracerProvider(sampler=ALWAYS_OFF)
        self.shutdowns = [self.meters.shutdown, self.sampled.shutdown, self.unsampled.shutdown]

    def instrument(self, cache: Any, *, tracer: str, tier_spans: bool = True) -> Callable[[], Callable[[], Any]]:
        def setup() -> Callable[[], Any]:
            from stratacache.metrics.otel import instrument

            if tracer == "none":  # metrics only: the Prometheus collector and OTel observable instruments
                unregister = _prometheus(cache)
                inst = instrument(cache, meter_provider=self.meters, traces=False)
                self.reader.get_metrics_data()

                def teardown() -> None:
                    inst.close()
                    unregister()

                return teardown
            if tracer == "api":  # the global providers: the API's proxies, none set (the SDK is installed: lazy)
                inst = instrument(cache)
            else:
                provider = self.sampled if tracer == "sampled" else self.unsampled
                inst = instrument(cache, meter_provider=self.meters, tracer_provider=provider, tier_spans=tier_spans)
                self.reader.get_metrics_data()  # one collection before the pass, as a scrape would
            if not inst.tracing:
                raise RuntimeError("instrument() installed no tracer")
            return inst.close

        return setup

    def close(self) -> None:
        for shutdown in self.shutdowns:
            shutdown()


def _prometheus(cache: Any) -> Callable[[], Any]:
    from prometheus_client import CollectorRegistry, generate_latest

    from stratacache.metrics.prometheus import CacheCollector

    registry = CollectorRegistry()
    collector = CacheCollector(cache)
    registry.register(collector)
    generate_latest(registry)  # one scrape before the pass
    return lambda: registry.unregister(collector)


def _hits_check(cache: Any, tier: str) -> Callable[[], str | None]:
    """A check that every get of the last pass hit ``tier`` (a pass that missed would time the wrong thing)."""
    before = {"misses": cache.stats()[tier].misses}

    def check() -> str | None:
        misses = cache.stats()[tier].misses
        if misses != before["misses"]:
            return f"{misses - before['misses']} gets missed the {tier} tier"
        return None

    return check


def _prefill(cache: Any, n: int) -> None:
    for lo in range(0, n, 1_000):
        cache.set_many({key_of(i): value_of(i) for i in range(lo, min(n, lo + 1_000))})


def _ops(n: int) -> list[str]:
    rng = random.Random(SEED)
    return [key_of(rng.randrange(N_KEYS)) for _ in range(n)]


def _l2_variants(cache: Any, otel: _Otel) -> list[Variant]:
    out = [Variant(BARE, _noop), Variant(CONTROL, _noop)]
    out.append(
        Variant("metrics: prometheus collector + otel metrics (no traces)", otel.instrument(cache, tracer="none"))
    )
    out.append(Variant("otel traces, sampled (SDK, batch export)", otel.instrument(cache, tracer="sampled")))
    out.append(Variant("otel traces, not sampled (SDK, ALWAYS_OFF)", otel.instrument(cache, tracer="unsampled")))
    out.append(Variant("otel traces, no global provider set yet (lazy no-op)", otel.instrument(cache, tracer="api")))
    out.append(
        Variant(
            "otel traces, loads only (SDK, sampled, tier_spans=False)",
            otel.instrument(cache, tracer="sampled", tier_spans=False),
        )
    )
    if otel.problem:
        for v in (*out[2:5], out[6]):
            v.problem = otel.problem
    return out


def run(log: Callable[[str], Any], *, tmp_root: Path | None = None, quick: bool = False) -> dict[str, Any]:
    """Time every read under every variant, round-robin, and return JSON-ready results."""
    import stratacache as sc

    rounds = QUICK_ROUNDS if quick else ROUNDS
    directory = Path(tempfile.mkdtemp(prefix="stratacache-overhead-", dir=tmp_root))
    closers: list[Callable[[], Any]] = []
    problems: dict[str, str] = {}
    reads: list[Read] = []
    otel = _Otel()
    closers.append(otel.close)
    server: servers.RedisServer | None = None
    try:
        l1 = sc.Cache(sc.MemoryTier(max_entries=2 * N_KEYS, max_bytes=None), namespace="bench-overhead-l1", ttl=TTL)
        closers.append(l1.close)
        _prefill(l1, N_KEYS)
        l1_variants = [
            Variant(BARE, _noop),
            Variant(CONTROL, _noop),
            Variant("prometheus collector", lambda: _prometheus(l1)),
        ]
        l1_variants.append(Variant("otel metrics + traces (SDK, sampled)", otel.instrument(l1, tracer="sampled")))
        if otel.problem:
            l1_variants[-1].problem = otel.problem
        reads.append(
            Read(
                "L1 hit",
                "Cache(MemoryTier(max_entries=20000, max_bytes=None)).get",
                L1_TARGET,
                l1.get,
                _ops(L1_GETS),
                l1_variants,
                _hits_check(l1, "memory"),
            )
        )

        db = sc.Cache(sc.SQLiteTier(directory / "cache.db", max_bytes=None), namespace="bench-overhead-l2", ttl=TTL)
        closers.append(db.close)
        _prefill(db, N_KEYS)
        reads.append(
            Read(
                "L2 hit (SQLite)",
                "Cache(SQLiteTier(path, max_bytes=None)).get, no L1",
                L2_TARGET,
                db.get,
                _ops(SQLITE_GETS),
                _l2_variants(db, otel),
                _hits_check(db, "sqlite"),
            )
        )

        binary = servers.find_binary()
        if binary is None:
            problems["L2 hit (Redis)"] = "skipped: no redis-server"
        else:
            try:
                server = servers.start(binary)
            except servers.ServerError as exc:
                problems["L2 hit (Redis)"] = f"redis-server: {exc}"
            else:
                rc = sc.Cache(sc.RedisTier(server.url, backplane=False), namespace="bench-overhead-redis", ttl=TTL)
                closers.append(rc.close)
                _prefill(rc, N_KEYS)
                reads.append(
                    Read(
                        "L2 hit (Redis)",
                        f"Cache(RedisTier(url, backplane=False)).get, no L1; redis-server {server.version}",
                        L2_TARGET,
                        rc.get,
                        _ops(REDIS_GETS),
                        _l2_variants(rc, otel),
                        _hits_check(rc, "redis"),
                    )
                )

        for read in reads:
            _time_read(read, rounds, log)
            problem = read.check()
            if problem is not None:
                problems[read.name] = problem
        spans_before_flush = otel.exported
        if not otel.problem:
            otel.sampled.force_flush()
        if not otel.problem and otel.exported == 0:
            problems["otel"] = "the sampled tracer exported no span"
        log(f"  {SUITE}: {otel.exported:,} sampled spans exported ({spans_before_flush:,} before the final flush)")
    finally:
        for close in reversed(closers):
            try:
                close()
            except Exception as exc:
                problems.setdefault("teardown", f"{type(exc).__name__}: {exc}")
        if server is not None:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "rounds": rounds,
        "targets": {"L1 hit": L1_TARGET, "L2 hit": L2_TARGET},
        "reads": [_read_json(r) for r in reads],
        "problems": problems,
    }


def _time_read(read: Read, rounds: int, log: Callable[[str], Any]) -> None:
    live = [v for v in read.variants if not v.problem]
    for v in live:  # warm-up: one pass of each, installed and removed
        try:
            teardown = v.setup()
            try:
                _pass(read.get, read.ops)
            finally:
                teardown()
        except Exception as exc:
            v.problem = f"{type(exc).__name__}: {exc}"
    live = [v for v in live if not v.problem]
    t0 = time.perf_counter()
    rng = random.Random(SEED)
    for _ in range(rounds):
        order = live[:]
        rng.shuffle(order)
        for v in order:
            teardown = v.setup()
            try:
                v.samples_ns.append(_pass(read.get, read.ops))
            finally:
                teardown()
    log(f"  {SUITE}: {read.name}: {rounds} rounds of {len(live)} variants in {time.perf_counter() - t0:.1f} s")


def _read_json(read: Read) -> dict[str, Any]:
    bare = next(v for v in read.variants if v.name == BARE)
    variants = []
    for v in read.variants:
        row: dict[str, Any] = {"name": v.name}
        if v.problem:
            row["problem"] = v.problem
        elif v.samples_ns:
            ratios = [x / b for x, b in zip(v.samples_ns, bare.samples_ns, strict=True)]
            row |= {
                "median_ns": statistics.median(v.samples_ns),
                "min_ns": min(v.samples_ns),
                "overhead": statistics.median(ratios) - 1,
                "overhead_q1_q3": [q - 1 for q in _quartiles(ratios)],
                "samples_ns": v.samples_ns,
            }
        variants.append(row)
    return {
        "name": read.name,
        "label": read.label,
        "target": read.target,
        "ops_per_pass": len(read.ops),
        "variants": variants,
    }


def _quartiles(xs: list[float]) -> tuple[float, float]:
    if len(xs) < 2:
        return (xs[0], xs[0])
    q = statistics.quantiles(xs, n=4)
    return (q[0], q[2])


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "## Metrics and tracing overhead",
        "",
        (
            f"- Method: `benchmarks/metrics_overhead.py`: one cache per read, its instrumentation switched between "
            f"passes; {result['rounds']} rounds, each one pass of every variant in a shuffled order; overhead = "
            "median over rounds of (pass time / pass time with nothing installed in the same round) - 1, with the "
            "interquartile range of that ratio. The A/A row is a second pass with nothing installed: the noise floor."
        ),
        (
            f"- Targets: L1 hit ≤ {result['targets']['L1 hit'] * 100:g}%, L2 hit ≤ "
            f"{result['targets']['L2 hit'] * 100:g}% (✓ met, ✗ missed; the control row is not judged)."
        ),
    ]
    lines += [f"- Problem: {name}: {p}" for name, p in result["problems"].items()]
    lines += [
        "",
        "| read | variant | µs/op (median) | overhead (median) | IQR | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for read in result["reads"]:
        for v in read["variants"]:
            if "problem" in v:
                lines.append(f"| {read['name']} | {v['name']} | - | - | - | {v['problem']} |")
                continue
            if "median_ns" not in v:
                continue
            # the targets are for metrics; spans around L2 calls are an opt-in extra whose cost is reported only
            traced = v["name"].startswith("otel traces")
            judged = v["name"] not in {BARE, CONTROL} and not traced
            mark = ("✓" if v["overhead"] <= read["target"] else "✗") if judged else ""
            overhead = "" if v["name"] == BARE else _pct(v["overhead"])
            iqr = "" if v["name"] == BARE else f"{_pct(v['overhead_q1_q3'][0])} … {_pct(v['overhead_q1_q3'][1])}"
            target = f"≤ {read['target'] * 100:g}% {mark}" if judged else ("spans: reported" if traced else "")
            lines.append(
                f"| {read['name']} | {v['name']} | {v['median_ns'] / 1000:.3f} | {overhead} | {iqr} | {target} |"
            )
    lines += ["", *[f"- {r['name']}: `{r['label']}`, {r['ops_per_pass']:,} gets per pass" for r in result["reads"]]]
    return "\n".join(lines) + "\n"
