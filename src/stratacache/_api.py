"""The public facades: :class:`Cache` (sync), :class:`AsyncCache` (async) and :func:`open` (tiers from URLs).

Both facades are thin subclasses of one engine (the async source in ``core/engine.py`` and its generated sync
twin), built from the same validated arguments.
"""

from __future__ import annotations

import inspect
import random
import re
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, TypeVar, overload

from stratacache._sync.engine import Engine
from stratacache.codecs.base import resolve_codec
from stratacache.core.clock import SYSTEM_CLOCK
from stratacache.core.config import parse_tier_url, validate_ttl
from stratacache.core.engine import AsyncEngine
from stratacache.core.keys import validate_namespace
from stratacache.core.loadpolicy import PLAIN, LoadPolicy, check_policy
from stratacache.decorators import AsyncCachedFunction, CachedFunction
from stratacache.errors import ConfigError
from stratacache.metrics.accesslog import AccessLog
from stratacache.metrics.tenants import Tenants
from stratacache.tiers.redis_spec import RedisTier
from stratacache.tiers.specs import MemoryTier, SQLiteTier, TierSpec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from stratacache._types import AsyncStore, Clock, Codec, Store
    from stratacache.tiers.memory import MemoryStore

__all__ = ["AsyncCache", "Cache", "open"]

P = ParamSpec("P")
R = TypeVar("R")

_DEFAULT_TTL = 300.0
_URL_SPLIT = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)|,\s*$")
_SCHEMES: dict[str, type[MemoryTier | SQLiteTier | RedisTier]] = {
    "memory": MemoryTier,
    "sqlite": SQLiteTier,
    **dict.fromkeys(
        ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"), RedisTier
    ),
}


def _engine_kwargs(
    tiers: tuple[MemoryTier | TierSpec | str, ...],
    *,
    namespace: str,
    ttl: float | None,
    codec: str | Codec,
    schema: int,
    clock: Clock | None,
    ttl_jitter: float,
    rng: random.Random | None,
    asynchronous: bool,
    policy: LoadPolicy | None = None,
    access_log: AccessLog | None = None,
    tenant_of: Callable[[str], str] | None = None,
    max_tenants: int = 100,
) -> tuple[dict[str, Any], list[Store | AsyncStore]]:
    """Validate every argument, then build the stores; nothing is opened if anything is wrong."""
    ns = validate_namespace(namespace)
    ttl_ = validate_ttl(ttl)
    codec_ = resolve_codec(codec)
    if isinstance(schema, bool) or not isinstance(schema, int) or not 0 <= schema < 2**23:
        raise ConfigError(f"schema must be an int in [0, 2**23), got {schema!r}")
    if isinstance(ttl_jitter, bool) or not isinstance(ttl_jitter, int | float) or not 0 <= ttl_jitter < 1:
        raise ConfigError(f"ttl_jitter must be a fraction in [0, 1), got {ttl_jitter!r}")
    policy_ = check_policy(policy) or PLAIN
    if access_log is not None and not isinstance(access_log, AccessLog):
        raise ConfigError(f"access_log must be an AccessLog, got {type(access_log).__name__}")
    tenants = Tenants(tenant_of, max_tenants) if tenant_of is not None else None
    specs = [_spec_of(t) for t in tiers] or [MemoryTier()]
    for i, spec in enumerate(specs):
        if isinstance(spec, MemoryTier) and i != 0:
            raise ConfigError("a MemoryTier can only be the first tier (L1)")
    clock_ = SYSTEM_CLOCK if clock is None else clock
    l1_spec = specs[0] if isinstance(specs[0], MemoryTier) else None
    l1: MemoryStore | None = l1_spec.build() if l1_spec is not None else None
    lower: list[Store | AsyncStore] = []
    try:
        for spec in specs[1:] if l1_spec is not None else specs:
            assert isinstance(spec, TierSpec)  # only the first tier may be a MemoryTier (checked above)
            lower.append(spec.build_for(clock_, asynchronous=asynchronous))
    except BaseException:
        for store in lower:
            _close_quietly(store)
        raise
    kwargs: dict[str, Any] = {
        "l1": l1,
        "namespace": ns,
        "ttl": ttl_,
        "codec": codec_,
        "schema": schema,
        "clock": clock_,
        "jitter": float(ttl_jitter),
        "rng": rng if rng is not None else random.Random(),  # noqa: S311 - jitter, not cryptography
        "policy": policy_,
        "weigher": l1_spec.weigher if l1_spec is not None else None,
        "l1_ttl_cap": l1_spec.ttl_cap if l1_spec is not None else None,
        "access_log": access_log,
        "tenants": tenants,
    }
    return kwargs, lower


def _close_quietly(store: Store | AsyncStore) -> None:
    """Close a store opened by a constructor that then failed (an async store's close is run to completion)."""
    result = store.close()
    if inspect.iscoroutine(result):
        result.close()  # never awaited: an async store holds nothing that needs the loop before first use
        sync_close = getattr(store, "close_now", None)
        if sync_close is not None:
            sync_close()


def _spec_of(tier: object) -> MemoryTier | TierSpec:
    if isinstance(tier, MemoryTier | TierSpec):
        return tier
    if isinstance(tier, str):
        return _spec_from_url(tier)
    raise ConfigError(
        f"expected a tier spec (MemoryTier, SQLiteTier, a TierSpec subclass) or a URL, got {type(tier).__name__}"
    )


def _spec_from_url(url: str) -> MemoryTier | TierSpec:
    parsed = parse_tier_url(url)
    cls = _SCHEMES.get(parsed.scheme)
    if cls is None:
        known = ", ".join(f"{s}://" for s in _SCHEMES)
        raise ConfigError(f"unknown tier scheme {parsed.scheme!r} in {url!r}: use {known}")
    return cls.from_url(parsed)


class _Facade:
    """The constructor both facades share: validate every argument, build the stores, start the engine."""

    _asynchronous: ClassVar[bool] = False

    def __init__(
        self,
        *tiers: MemoryTier | TierSpec | str,
        namespace: str = "default",
        ttl: float | None = _DEFAULT_TTL,
        codec: str | Codec = "msgpack",
        schema: int = 0,
        clock: Clock | None = None,
        ttl_jitter: float = 0.0,
        rng: random.Random | None = None,
        policy: LoadPolicy | None = None,
        access_log: AccessLog | None = None,
        tenant_of: Callable[[str], str] | None = None,
        max_tenants: int = 100,
    ) -> None:
        kwargs, lower = _engine_kwargs(
            tiers,
            namespace=namespace,
            ttl=ttl,
            codec=codec,
            schema=schema,
            clock=clock,
            ttl_jitter=ttl_jitter,
            rng=rng,
            asynchronous=self._asynchronous,
            policy=policy,
            access_log=access_log,
            tenant_of=tenant_of,
            max_tenants=max_tenants,
        )
        self._start(lower, kwargs)

    def _start(self, lower: list[Any], kwargs: dict[str, Any]) -> None:
        raise NotImplementedError


class Cache(_Facade, Engine):
    """A synchronous multi-tier cache.

    Args:
        *tiers: tier specs or URLs, L1 first: ``MemoryTier(...)`` (only as the first tier), ``SQLiteTier(...)``,
            ``"memory://?max_entries=1000"``, ``"sqlite:///path/cache.db"``. None given: one ``MemoryTier()``.
        namespace: every key lives in it; ``clear()`` and tags act on it alone.
        ttl: default seconds to live (``None``: no expiry).
        codec: ``"msgpack"`` (default), ``"json"``, ``"pickle"`` (signed; needs ``STRATACACHE_SIGNING_KEY``),
            ``"msgpack+zstd"``, or a :class:`~stratacache.Codec` object.
        schema: your data's schema tag; entries written under another schema are misses. Bump it when the shape
            of cached values changes.
        clock: time source (``stratacache.testing.FakeClock`` in tests).
        ttl_jitter: shorten each TTL by a random fraction up to this value, spreading expiries.
        rng: random source for jitter and early refresh (seed it for reproducible tests).
        policy: the default :class:`~stratacache.LoadPolicy` of ``get_or_load`` and decorated functions
            (stale-while-revalidate, fail-safe, loader timeouts, early refresh, negative TTL); off by default.
        access_log: a sampled log of the keys looked up (:class:`~stratacache.AccessLog`): ``hot_keys()``,
            ``stratacache top``, and traces for ``stratacache simulate``. Off by default.
        tenant_of: names the tenant of a key (the key as stored); lookups are then counted per tenant
            (``Stats.tenants``, the ``tenant`` metric label). Off by default.
        max_tenants: tenants with counters of their own; later ones are counted as ``"other"``.

    Raises:
        ConfigError: a bad tier, URL, codec, namespace or option.
        InvalidTTLError: a bad ``ttl``.
    """

    def _start(self, lower: list[Any], kwargs: dict[str, Any]) -> None:
        Engine.__init__(self, lower=lower, **kwargs)

    @overload
    def cached(self, fn: Callable[P, R], /) -> CachedFunction[P, R]: ...

    @overload
    def cached(
        self,
        fn: None = None,
        /,
        *,
        ttl: float | None = None,
        tags: Callable[..., Iterable[str]] | None = None,
        key: Callable[..., str] | None = None,
        policy: LoadPolicy | None = None,
    ) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...

    def cached(
        self,
        fn: Callable[P, R] | None = None,
        /,
        *,
        ttl: float | None = None,
        tags: Callable[..., Iterable[str]] | None = None,
        key: Callable[..., str] | None = None,
        policy: LoadPolicy | None = None,
    ) -> CachedFunction[P, R] | Callable[[Callable[P, R]], CachedFunction[P, R]]:
        """Memoize a function: ``@cache.cached`` or ``@cache.cached(ttl=60, tags=lambda uid: [f"user:{uid}"])``.

        Args:
            fn: the function (when used without parentheses).
            ttl: seconds to live (``None``: the cache's default).
            tags: called with the function's arguments; returns the tags of the result.
            key: called with the arguments (without ``self``); returns a key suffix replacing the digest.
            policy: a :class:`~stratacache.LoadPolicy` for this function (default: the cache's).

        Raises:
            TypeError: ``fn`` is a coroutine function (use :class:`AsyncCache`).
            InvalidTTLError: a bad ``ttl``.
        """
        ttl_ = validate_ttl(ttl)
        policy_ = check_policy(policy)

        def decorate(f: Callable[P, R]) -> CachedFunction[P, R]:
            if inspect.iscoroutinefunction(f):
                raise TypeError(f"{f.__qualname__} is a coroutine function: decorate it with AsyncCache.cached")
            if not callable(f):
                raise TypeError("cached() decorates a function")
            return CachedFunction(self, f, ttl=ttl_, tags=tags, key=key, policy=policy_)

        return decorate(fn) if fn is not None else decorate

    def __enter__(self) -> Cache:
        return self

    def __repr__(self) -> str:
        names = [t.name for t in self.stats().tiers]
        return f"<Cache namespace={self.namespace!r} tiers={names}>"


class AsyncCache(_Facade, AsyncEngine):
    """The asyncio facade over the same engine as :class:`Cache`; every I/O method is awaitable.

    Takes the same arguments as :class:`Cache`. L1 lookups stay synchronous inside (an ``await`` costs more
    than the lookup); the embedded SQLite tier runs in the default executor so the event loop never waits on
    disk. Use ``async with AsyncCache(...) as cache:`` or ``await cache.close()``.
    """

    _asynchronous = True

    def _start(self, lower: list[Any], kwargs: dict[str, Any]) -> None:
        AsyncEngine.__init__(self, lower=lower, **kwargs)

    @overload
    def cached(self, fn: Callable[P, Awaitable[R]], /) -> AsyncCachedFunction[P, R]: ...

    @overload
    def cached(
        self,
        fn: None = None,
        /,
        *,
        ttl: float | None = None,
        tags: Callable[..., Iterable[str]] | None = None,
        key: Callable[..., str] | None = None,
        policy: LoadPolicy | None = None,
    ) -> Callable[[Callable[P, Awaitable[R]]], AsyncCachedFunction[P, R]]: ...

    def cached(
        self,
        fn: Callable[P, Awaitable[R]] | None = None,
        /,
        *,
        ttl: float | None = None,
        tags: Callable[..., Iterable[str]] | None = None,
        key: Callable[..., str] | None = None,
        policy: LoadPolicy | None = None,
    ) -> AsyncCachedFunction[P, R] | Callable[[Callable[P, Awaitable[R]]], AsyncCachedFunction[P, R]]:
        """Memoize a coroutine function (see :meth:`Cache.cached`); ``invalidate`` is awaitable here.

        Raises:
            TypeError: ``fn`` is not a coroutine function (use :class:`Cache`).
            InvalidTTLError: a bad ``ttl``.
        """
        ttl_ = validate_ttl(ttl)
        policy_ = check_policy(policy)

        def decorate(f: Callable[P, Awaitable[R]]) -> AsyncCachedFunction[P, R]:
            if not inspect.iscoroutinefunction(f):
                raise TypeError(
                    f"{getattr(f, '__qualname__', f)!s} is not a coroutine function: decorate it with Cache.cached"
                )
            return AsyncCachedFunction(self, f, ttl=ttl_, tags=tags, key=key, policy=policy_)

        return decorate(fn) if fn is not None else decorate

    async def __aenter__(self) -> AsyncCache:
        return self

    def __repr__(self) -> str:
        names = [t.name for t in self.stats().tiers]
        return f"<AsyncCache namespace={self.namespace!r} tiers={names}>"


def open(  # noqa: A001 - mirrors the stdlib's open()/dbm.open() naming, as documented
    *urls: str,
    namespace: str = "default",
    ttl: float | None = _DEFAULT_TTL,
    codec: str | Codec = "msgpack",
    schema: int = 0,
    clock: Clock | None = None,
    ttl_jitter: float = 0.0,
    rng: random.Random | None = None,
    policy: LoadPolicy | None = None,
) -> Cache:
    """Build a :class:`Cache` from tier URLs, L1 first (other arguments as for :class:`Cache`).

    ``open("memory://?max_entries=10000", "sqlite:///tmp/app.db")``; a single argument may also be a
    comma-separated list (the form of ``STRATACACHE_URL``): a comma starts a new tier only where a scheme follows,
    so ``redis+cluster://h1:7000,h2:7001`` stays one URL. No URL: one in-process tier.

    Raises:
        ConfigError: a bad URL or parameter.
    """
    flat: list[str] = []
    for url in urls:
        if not isinstance(url, str):
            raise ConfigError(f"tier URLs must be str, got {type(url).__name__}")
        flat.extend(part.strip() for part in _URL_SPLIT.split(url) if part.strip())
    if urls and not flat:
        raise ConfigError("no tier URL given")
    return Cache(
        *flat,
        namespace=namespace,
        ttl=ttl,
        codec=codec,
        schema=schema,
        clock=clock,
        ttl_jitter=ttl_jitter,
        rng=rng,
        policy=policy,
    )
