"""The suites: which operations run on which libraries, with what data.

- ``l1``: in-process get (hit) and set (overwrite) of small values, 10,000 keys pre-filled, read in a fixed
  shuffled order.
- ``deco``: a memoized function called with arguments whose results are already cached, sync and async.
- ``sqlite``: get (hit) and set (overwrite) against an embedded on-disk store, 10,000 keys pre-filled; both
  libraries write into one temporary directory, so they share a disk and a filesystem.
- ``redis``: the shared tier. One ``redis-server`` started for the run (``benchmarks/servers.py``), 10,000 keys
  of ~100-byte values pre-filled per library (each library in its own database); sync and async get (hit),
  ``get_many`` of 100 keys, sync and async set (overwrite). stratacache has no L1 here, so every get is an L2
  hit through the engine; the baseline is redis-py's own client. Skipped when no ``redis-server`` is found.
- ``hitrate``: not timed; seeded key traces replayed with ``stratacache.simulate`` to compare hit ratios
  (``benchmarks/hitrate.py``, run by the CLI outside the timing harness).

Every case is checked before and after timing (a "hit" case that missed, or a decorator that called its
function again, would time the wrong thing); problems are recorded in the results.
"""

from __future__ import annotations

import inspect
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import servers
from benchmarks.adapters import ADAPTERS, Adapter, RedisKV
from benchmarks.harness import Case, async_call_pass, get_pass, set_pass

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Sequence

SUITES = ("l1", "deco", "sqlite", "redis", "hitrate")
TIMED = ("l1", "deco", "sqlite", "redis")

N_KEYS = 10_000
N_ARGS = 1_000
SEED = 20_240_601
CHECK_SAMPLE = 200

L1_PEERS = ("stratacache", "dict", "cachetools", "cachebox", "theine", "dogpile.cache")
DECO_PEERS = ("stratacache", "cachetools", "cachebox", "theine", "dogpile.cache")
ADECO_PEERS = ("stratacache", "cachebox", "cashews", "aiocache", "theine")
SQLITE_PEERS = ("stratacache", "diskcache")
# redis-py first: its rows lead the table. Each library gets its own database, so keys never collide.
REDIS_SYNC_PEERS = ("redis-py", "stratacache", "dogpile.cache")
REDIS_ASYNC_PEERS = ("redis-py", "stratacache", "cashews", "aiocache")
REDIS_DBS = {"stratacache": 0, "redis-py": 1, "dogpile.cache": 2, "cashews": 3, "aiocache": 4}
BATCH = 100

OPS = {
    "l1": ("get-hit", "set"),
    "deco": ("call-hit sync", "call-hit async"),
    "sqlite": ("get-hit", "set"),
}
# op -> (peers, sync?, what a pass calls)
REDIS_OPS: dict[str, tuple[tuple[str, ...], bool, str]] = {
    "get-hit sync": (REDIS_SYNC_PEERS, True, "get"),
    "get-hit sync, backplane on": (("redis-py", "stratacache"), True, "get"),
    "get-hit sync, strict_reads off": (("redis-py", "stratacache"), True, "get"),
    "get_many 100 sync": (REDIS_SYNC_PEERS, True, "get_many"),
    "set sync": (REDIS_SYNC_PEERS, True, "set"),
    "get-hit async": (REDIS_ASYNC_PEERS, False, "get"),
    "set async": (REDIS_ASYNC_PEERS, False, "set"),
}


def value_of(i: int) -> dict[str, Any]:
    """A small value, shaped like a database row."""
    return {"id": i, "name": f"user-{i}", "active": True}


def row_of(i: int) -> dict[str, Any]:
    """A ~100-byte value (msgpack), shaped like a database row: what the ``redis`` suite stores."""
    return {
        "id": i,
        "name": f"user-{i}",
        "email": f"user-{i}@example.com",
        "active": True,
        "roles": ["reader", "writer"],
        "score": 0.5,
    }


def cycle_to(items: Sequence[Any], n: int) -> list[Any]:
    """``items`` repeated in order until there are ``n``."""
    m = len(items)
    return [items[i % m] for i in range(n)]


@dataclass
class Context:
    loop: asyncio.AbstractEventLoop
    tmp_root: Path | None = None
    closers: list[Callable[[], Any]] = field(default_factory=list)
    adapters: dict[str, Adapter | str] = field(default_factory=dict)
    tmpdir: Path | None = None
    cases: list[Case] = field(default_factory=list)

    def adapter(self, name: str) -> Adapter | str:
        """The loaded adapter, or the reason it is missing (``"not installed: ..."``)."""
        if name not in self.adapters:
            a = ADAPTERS[name]()
            try:
                a.load()
            except ImportError as exc:
                self.adapters[name] = f"not installed ({type(exc).__name__}: {exc})"
            else:
                self.adapters[name] = a
        return self.adapters[name]

    def disk_dir(self) -> Path:
        if self.tmpdir is None:
            self.tmpdir = Path(tempfile.mkdtemp(prefix="stratacache-bench-", dir=self.tmp_root))
        return self.tmpdir

    def close(self) -> list[str]:
        problems: list[str] = []
        for close in reversed(self.closers):
            try:
                result = close()
                if inspect.isawaitable(result):
                    self.loop.run_until_complete(result)
            except Exception as exc:
                problems.append(f"{type(exc).__name__}: {exc}")
        self.closers.clear()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        return problems


def _cases_for(ctx: Context, suite: str, op: str, peers: Sequence[str]) -> list[tuple[Case, Adapter]]:
    """One case per peer; peers that are missing are recorded and left out of the returned pairs."""
    out: list[tuple[Case, Adapter]] = []
    for name in peers:
        case = Case(suite=suite, op=op, impl=name)
        ctx.cases.append(case)
        a = ctx.adapter(name)
        if isinstance(a, str):
            case.status, case.detail = "not installed", a
            continue
        out.append((case, a))
    return out


def _kv_cases(ctx: Context, suite: str, build: Callable[[Adapter], Any], peers: Sequence[str]) -> None:
    keys = [f"user:{i:05d}" for i in range(N_KEYS)]
    values = {k: value_of(i) for i, k in enumerate(keys)}
    order = keys[:]
    random.Random(SEED).shuffle(order)
    sample = order[:CHECK_SAMPLE]
    get_op, set_op = OPS[suite]
    gets = _cases_for(ctx, suite, get_op, peers)
    sets = {case.impl: case for case, _ in _cases_for(ctx, suite, set_op, peers)}
    for get_case, adapter in gets:
        set_case = sets[get_case.impl]
        try:
            kv = build(adapter)
            ctx.closers.append(kv.close)
            kv.prefill(list(values.items()))
        except Exception as exc:
            get_case.fail("setup", exc)
            set_case.fail("setup", exc)
            continue

        def check(kv: Any = kv) -> str | None:
            bad = [k for k in sample if kv.read(k) != values[k]]
            return f"{len(bad)}/{len(sample)} sampled keys missing or wrong, e.g. {bad[0]!r}" if bad else None

        get_case.label = set_case.label = kv.label
        get_case.make_pass = lambda n, kv=kv: get_pass(kv.get, cycle_to(order, n))
        set_case.make_pass = lambda n, kv=kv: set_pass(kv.set, [(k, values[k]) for k in cycle_to(order, n)])
        get_case.check = set_case.check = check


def _loader() -> tuple[Callable[[int], dict[str, Any]], list[int]]:
    calls = [0]

    def load_user(user_id: int) -> dict[str, Any]:
        calls[0] += 1
        return value_of(user_id)

    return load_user, calls


def _async_loader() -> tuple[Callable[[int], Any], list[int]]:
    calls = [0]

    async def load_user(user_id: int) -> dict[str, Any]:
        calls[0] += 1
        return value_of(user_id)

    return load_user, calls


def _deco_cases(ctx: Context, *, is_async: bool) -> None:
    op = OPS["deco"][1 if is_async else 0]
    peers = ADECO_PEERS if is_async else DECO_PEERS
    args = list(range(N_ARGS))
    random.Random(SEED).shuffle(args)
    loop = ctx.loop
    for case, adapter in _cases_for(ctx, "deco", op, peers):
        fn, calls = _async_loader() if is_async else _loader()
        try:
            d = adapter.adeco(fn) if is_async else adapter.deco(fn)
            ctx.closers.append(d.close)
            f = d.fn
            for a in args:  # warm up: every argument's result is cached before timing
                if is_async:
                    loop.run_until_complete(f(a))
                else:
                    f(a)
        except Exception as exc:
            case.fail("setup", exc)
            continue
        warm_calls = calls[0]

        def check(f: Any = f, calls: list[int] = calls, warm_calls: int = warm_calls) -> str | None:
            extra = calls[0] - warm_calls
            for a in args[:CHECK_SAMPLE]:
                got = loop.run_until_complete(f(a)) if is_async else f(a)
                if got != value_of(a):
                    return f"wrong result for {a}: {got!r}"
            if warm_calls != len(args):
                return f"warm-up called the function {warm_calls} times for {len(args)} arguments"
            return f"function called {extra} times after warm-up (misses)" if extra else None

        case.label = d.label
        case.check = check
        if is_async:
            case.make_pass = lambda n, f=f: async_call_pass(loop, f, cycle_to(args, n))
        else:
            case.make_pass = lambda n, f=f: get_pass(f, cycle_to(args, n))


def _star(fn: Callable[[Any, Any], Any]) -> Callable[[tuple[Any, Any]], Any]:
    """``fn(k, v)`` as a one-argument call on ``(k, v)``, for the async set passes (the same wrapper for all)."""

    def call(kv: tuple[Any, Any]) -> Any:
        return fn(*kv)

    return call


def _redis_cases(ctx: Context) -> None:
    plan = [(op, Case(suite="redis", op=op, impl=name)) for op, (peers, _, _) in REDIS_OPS.items() for name in peers]
    ctx.cases.extend(case for _, case in plan)
    binary = servers.find_binary()
    if binary is None:
        for _, case in plan:
            case.status = "skipped: no redis-server"
        return
    try:
        server = servers.start(binary)
    except Exception as exc:
        for _, case in plan:
            case.fail("redis-server", exc)
        return
    ctx.closers.append(server.stop)  # closers run last to first: the server outlives every client
    keys = [f"user:{i:05d}" for i in range(N_KEYS)]
    values = {k: row_of(i) for i, k in enumerate(keys)}
    order = keys[:]
    random.Random(SEED).shuffle(order)
    batches = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
    sample = order[:CHECK_SAMPLE]
    loop = ctx.loop
    stores: dict[tuple[str, bool, str], RedisKV | str] = {}

    def store(name: str, *, sync: bool, variant: str) -> RedisKV | str:
        """The library's store, built and pre-filled once per (sync, variant), or why it could not be."""
        backplane = variant
        if (name, sync, backplane) not in stores:
            a = ctx.adapter(name)
            if isinstance(a, str):
                stores[name, sync, backplane] = a
                return a
            url = f"redis://{servers.HOST}:{server.port}/{REDIS_DBS[name]}"
            try:
                options = {  # stratacache's only
                    "backplane on": {"backplane": True},
                    "strict_reads off": {"strict_reads": False},
                }.get(variant, {})
                kv = a.redis(url, **options) if sync else a.aredis(url)
                ctx.closers.append(kv.close)
                filled = kv.prefill(list(values.items()))
                if inspect.isawaitable(filled):
                    loop.run_until_complete(filled)
            except Exception as exc:
                stores[name, sync, backplane] = f"setup: {type(exc).__name__}: {exc}"
            else:
                kv.label += f"; redis-server {server.version}, db {REDIS_DBS[name]}"
                stores[name, sync, backplane] = kv
        return stores[name, sync, backplane]

    for op, case in plan:
        _, sync, call = REDIS_OPS[op]
        variant = op.partition(", ")[2] if case.impl == "stratacache" else ""
        kv = store(case.impl, sync=sync, variant=variant)
        if isinstance(kv, str):
            if kv.startswith("not installed"):
                case.status, case.detail = "not installed", kv
            else:
                case.status, case.detail = "error", kv
            continue
        if call == "get_many" and kv.get_many is None:
            case.status, case.detail = "error", "no get_many in this adapter"
            continue

        def check(kv: RedisKV = kv, call: str = call, sync: bool = sync) -> str | None:
            if call == "get_many":
                assert kv.read_many is not None
                got = [v for batch in batches[:2] for v in kv.read_many(batch)]
                want = [values[k] for batch in batches[:2] for k in batch]
            else:
                got = [kv.read(k) if sync else loop.run_until_complete(kv.read(k)) for k in sample]
                want = [values[k] for k in sample]
            bad = sum(g != w for g, w in zip(got, want, strict=True))
            return f"{bad}/{len(want)} sampled keys missing or wrong" if bad else None

        case.label = kv.label
        case.check = check
        if call == "get":
            if sync:
                case.make_pass = lambda n, kv=kv: get_pass(kv.get, cycle_to(order, n))
            else:
                case.make_pass = lambda n, kv=kv: async_call_pass(loop, kv.get, cycle_to(order, n))
        elif call == "get_many":
            case.make_pass = lambda n, kv=kv: get_pass(kv.get_many, cycle_to(batches, n))
        elif sync:
            case.make_pass = lambda n, kv=kv: set_pass(kv.set, [(k, values[k]) for k in cycle_to(order, n)])
        else:
            case.make_pass = lambda n, kv=kv: async_call_pass(
                loop, _star(kv.set), [(k, values[k]) for k in cycle_to(order, n)]
            )


def build(suites: Sequence[str], ctx: Context) -> list[Case]:
    """Set up every case of ``suites`` (caches built and pre-filled); the returned cases are ready to time."""
    for suite in suites:
        if suite == "l1":
            _kv_cases(ctx, "l1", lambda a: a.l1(), L1_PEERS)
        elif suite == "deco":
            _deco_cases(ctx, is_async=False)
            _deco_cases(ctx, is_async=True)
        elif suite == "sqlite":
            _kv_cases(ctx, "sqlite", lambda a: a.disk(ctx.disk_dir()), SQLITE_PEERS)
        elif suite == "redis":
            _redis_cases(ctx)
        elif suite == "hitrate":
            continue  # no timed case: see benchmarks/hitrate.py
        else:  # pragma: no cover - the CLI validates suite names
            raise ValueError(f"unknown suite {suite!r}")
    return ctx.cases
