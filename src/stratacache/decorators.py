"""``@cache.cached``: memoize a function through a cache, with stable keys and tag invalidation.

The wrapper is chosen once, at decoration: a plain function gets a synchronous wrapper (``Cache``), a coroutine
function an asynchronous one (``AsyncCache``); the other combinations are a ``TypeError``. Keys are
``module.qualname`` plus a blake2b digest of the canonically encoded bound arguments (defaults applied), so
``f(1)``, ``f(x=1)`` and ``f(1, y=<default>)`` share one entry and keys agree across processes and runs.
Methods are supported: a first parameter named ``self`` or ``cls`` is left out of the key, and ``tags=`` and
``key=`` callables receive the arguments without it (``tags=lambda user_id: [f"user:{user_id}"]`` fits both
``def load(user_id)`` and ``def load(self, user_id)``).
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, Final, Generic, ParamSpec, TypeVar, cast

from stratacache._primitives import MISSING
from stratacache.core.keys import canonical_args, digest_args, encode_key, validate_tags
from stratacache.core.loadpolicy import PLAIN

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from stratacache._sync.engine import Engine
    from stratacache.core.engine import AsyncEngine
    from stratacache.core.loadpolicy import LoadPolicy

__all__ = ["AsyncCachedFunction", "CachedFunction", "KeyBuilder"]

_MEMO_TYPES: Final = frozenset({str, int, bool, bytes, type(None)})

P = ParamSpec("P")
R = TypeVar("R")


class KeyBuilder:
    """Builds the stable key of a call; the common shape (positional args only) skips ``inspect.bind``."""

    __slots__ = ("_defaults", "_fast", "_memo", "_n", "_prefix", "_sig", "_skip_first")

    def __init__(self, fn: Callable[..., Any], prefix: str | None = None) -> None:
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        qualname = getattr(fn, "__qualname__", getattr(fn, "__name__", "fn"))
        self._skip_first = bool(params) and params[0].name in {"self", "cls"} and "." in qualname
        if self._skip_first:
            params = params[1:]
            sig = sig.replace(parameters=params)
        self._sig = sig
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self._fast = all(p.kind in positional for p in params)
        self._n = len(params)
        self._defaults = tuple(p.default for p in params)
        module = getattr(fn, "__module__", None) or "__main__"
        self._prefix = prefix if prefix is not None else f"{module}.{qualname}:"
        digest = self._prefix
        # Calls made only of str/int/bool/bytes/None are the common shape: their keys are memoized, typed so that
        # 1 and True stay apart (floats are left out: 0.0 == -0.0 would share a memo entry and must not).
        self._memo = functools.lru_cache(maxsize=4096, typed=True)(lambda *a: digest + digest_args(a))

    @property
    def signature(self) -> inspect.Signature:
        """The signature keys are built from (without ``self``/``cls``)."""
        return self._sig

    @property
    def skip_first(self) -> bool:
        """Whether the first argument (``self``/``cls``) is left out of the key."""
        return self._skip_first

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
        """Bind a call (without ``self``/``cls``) to the signature, defaults applied."""
        bound = self._sig.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound

    def values(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """The bound argument values, defaults applied, in parameter order."""
        n = len(args)
        if self._fast and not kwargs and n <= self._n:
            if n == self._n:
                return args
            tail = self._defaults[n:]
            if inspect.Parameter.empty not in tail:
                return args + tail
        bound = self.bind(args, kwargs)
        out: list[Any] = []
        for name, value in bound.arguments.items():
            kind = self._sig.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                out.append(dict(value))
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                out.append(tuple(value))
            else:
                out.append(value)
        return tuple(out)

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The stable key string of a call (arguments without ``self``/``cls``)."""
        if not kwargs and len(args) == self._n and self._fast:
            for a in args:
                if type(a) not in _MEMO_TYPES:
                    break
            else:
                return self._memo(*args)
        return self._prefix + digest_args(self.values(args, kwargs))

    def canonical(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The canonical encoding the digest is computed from (for debugging key collisions)."""
        return canonical_args(self.values(args, kwargs))


def _call_tags(
    tags: Callable[..., Iterable[str]] | None, kb: KeyBuilder, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Iterable[str]:
    """Call ``tags`` with the arguments in positional form, so ``f(1)`` and ``f(user_id=1)`` tag alike."""
    assert tags is not None
    if kwargs:
        bound = kb.bind(args, kwargs)
        return tags(*bound.args, **bound.kwargs)
    return tags(*args)


class _Memoized:
    """What both memoized flavours share: the wrapped function, its key builder, tags and descriptor binding."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        ttl: float | None,
        tags: Callable[..., Iterable[str]] | None,
        key: Callable[..., str] | None,
        policy: LoadPolicy | None = None,
    ) -> None:
        self.__wrapped__ = fn
        functools.update_wrapper(cast("Any", self), fn)  # a callable subclass is the real wrapper
        self._ttl = ttl
        self._policy = policy
        self._tags = tags
        self._keyfn = key
        self._kb = KeyBuilder(fn)

    def _hit_path(self) -> None:
        """Specialise the hit path once, for calls of the common shape (see ``__call__``).

        ``_stored`` maps a call's arguments to the key as the engine's L1 stores it, without the namespace prefix
        (``cache._short(self.key(*args))``), memoized like :meth:`KeyBuilder.key` (typed, str/int/bool/bytes/None
        arguments only); an invalid key raises on every call, as the engine's check does (errors are not cached).
        """
        kb = self._kb
        # positional arguments only, no key= callable: the key is a function of the arguments alone (a tags=
        # callable is only called on a miss, when the result is stored: a hit checks the entry's own tags)
        self._quick = self._keyfn is None and kb._fast
        self._n = kb._n
        self._skip = kb.skip_first
        digest = kb._prefix
        self._stored = functools.lru_cache(maxsize=4096, typed=True)(lambda *a: encode_key(digest + digest_args(a)))

    def _quick_key(self, cache: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """The stored key of a call of the common shape (positional scalars only), memoized; ``None`` otherwise."""
        if not self._quick or kwargs:
            return None
        kargs = args[1:] if self._skip else args
        if len(kargs) != self._n:
            return None
        for a in kargs:
            if type(a) not in _MEMO_TYPES:
                return None
        if cache._closed:
            cache._check_open()
        return self._stored(*kargs)

    def key(self, *args: Any, **kwargs: Any) -> str:
        """The cache key these arguments map to (without ``self`` for methods), stable across processes."""
        if self._keyfn is not None:
            return self._kb._prefix + str(self._keyfn(*args, **kwargs))
        return self._kb.key(args, kwargs)

    def _call_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The stored key of a call (``self``/``cls`` dropped for methods)."""
        kargs = args[1:] if self._kb.skip_first else args
        return self.key(*kargs, **kwargs)

    def _call_tags(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, ...]:
        """The checked tags of a call (``self``/``cls`` dropped), computed when its result is to be stored."""
        if self._tags is None:
            return ()
        kargs = args[1:] if self._kb.skip_first else args
        return validate_tags(_call_tags(self._tags, self._kb, kargs, kwargs))

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return _BoundCached(self, obj)


class CachedFunction(_Memoized, Generic[P, R]):
    """A function memoized through a synchronous :class:`~stratacache.Cache`."""

    def __init__(
        self,
        cache: Engine,
        fn: Callable[P, R],
        *,
        ttl: float | None,
        tags: Callable[..., Iterable[str]] | None,
        key: Callable[..., str] | None,
        policy: LoadPolicy | None = None,
    ) -> None:
        super().__init__(fn, ttl=cache._ttl_of(ttl), tags=tags, key=key, policy=policy)  # ttl None: the default
        self._cache = cache
        self._fn = fn
        self._hit_path()

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Drop the entry these arguments map to; return whether it existed."""
        return self._cache.delete(self.key(*args, **kwargs))

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Return the cached result for these arguments, calling the function on a miss.

        Calls of the common shape (positional scalars, no ``key=`` callable) take a memoized stored key; with the
        plain load policy a hit is served by the engine's L1 hit path, and the loader and the ``tags=`` callable
        are only built and called on a miss (a hit checks the tags the stored entry carries).
        """
        cache = self._cache
        k = self._quick_key(cache, args, kwargs)
        if k is None:
            k = cache._short(self._call_key(args, kwargs))
        pol = self._policy
        if (cache._policy if pol is None else pol) is PLAIN:
            value = cache._hit(k)
            if value is not MISSING:
                return value  # type: ignore[no-any-return]
        fn = self._fn
        tags = self._call_tags(args, kwargs)
        return cache._get_or_load(k, lambda: fn(*args, **kwargs), self._ttl, tags, pol)


class _BoundCached:
    """A cached method bound to an instance: ``obj.method(...)``, ``obj.method.invalidate(...)``."""

    __slots__ = ("_cf", "_obj")

    def __init__(self, cf: _Memoized, obj: object) -> None:
        self._cf = cf
        self._obj = obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._cf(self._obj, *args, **kwargs)  # type: ignore[operator]

    @property
    def __signature__(self) -> inspect.Signature:
        """The method's signature without ``self``, as for any bound method."""
        return self._cf._kb.signature

    def key(self, *args: Any, **kwargs: Any) -> str:
        """See :meth:`CachedFunction.key`."""
        return self._cf.key(*args, **kwargs)

    def invalidate(self, *args: Any, **kwargs: Any) -> Any:
        """See :meth:`CachedFunction.invalidate`."""
        return self._cf.invalidate(*args, **kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cf, name)


class AsyncCachedFunction(_Memoized, Generic[P, R]):
    """A coroutine function memoized through an :class:`~stratacache.AsyncCache`."""

    def __init__(
        self,
        cache: AsyncEngine,
        fn: Callable[P, Awaitable[R]],
        *,
        ttl: float | None,
        tags: Callable[..., Iterable[str]] | None,
        key: Callable[..., str] | None,
        policy: LoadPolicy | None = None,
    ) -> None:
        super().__init__(fn, ttl=cache._ttl_of(ttl), tags=tags, key=key, policy=policy)  # ttl None: the default
        self._cache = cache
        self._fn = fn
        self._hit_path()
        if hasattr(inspect, "markcoroutinefunction"):  # Python >= 3.12
            inspect.markcoroutinefunction(self)

    async def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Drop the entry these arguments map to; return whether it existed."""
        return await self._cache.delete(self.key(*args, **kwargs))

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Return the cached result for these arguments, awaiting the function on a miss.

        The hit path is :meth:`CachedFunction.__call__`'s, and awaits nothing.
        """
        cache = self._cache
        k = self._quick_key(cache, args, kwargs)
        if k is None:
            k = cache._short(self._call_key(args, kwargs))
        pol = self._policy
        if (cache._policy if pol is None else pol) is PLAIN:
            value = cache._hit(k)
            if value is not MISSING:
                return value  # type: ignore[no-any-return]
        fn = self._fn
        tags = self._call_tags(args, kwargs)
        return await cache._get_or_load(k, lambda: fn(*args, **kwargs), self._ttl, tags, pol)
