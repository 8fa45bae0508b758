"""Tier specs: frozen, validated descriptions of tiers, turned into stores by the engine's facades.

Specs are checked when constructed, so a bad size, policy or path fails at the call site with
:class:`~stratacache.errors.ConfigError`; ``build()`` opens the store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from stratacache.core.config import TierURL, parse_bool, parse_int, parse_size
from stratacache.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from stratacache._types import AsyncStore, Clock, Store
    from stratacache.tiers.memory import MemoryStore
    from stratacache.tiers.sqlite import SQLiteStore

__all__ = ["MemoryTier", "SQLiteTier", "TierSpec", "default_sqlite_path"]

_POLICIES = ("lru", "tinylfu")


class TierSpec:
    """Base of the specs of tiers *below* L1 (embedded or shared stores); subclass it to plug in your own.

    A subclass is a frozen description, validated when constructed, whose :meth:`build` opens a store that
    follows :class:`stratacache._types.Store` and passes :class:`stratacache.testing.TierContract`.
    """

    scheme: ClassVar[str] = ""
    """URL scheme that :func:`stratacache.open` maps to this spec (built-in specs only)."""

    def build(self, *, now: Callable[[], float]) -> Store:
        """Open the store; ``now`` is the cache's wall clock (for access times and reclaiming)."""
        raise NotImplementedError

    def build_for(self, clock: Clock, *, asynchronous: bool) -> Store | AsyncStore:
        """Open the store for a sync cache, or for an async one (by default: :meth:`build` run in the executor).

        Override it when the tier has a native async client (the Redis tier does).
        """
        store = self.build(now=clock.now)
        if not asynchronous:
            return store
        from stratacache.tiers.base import BlockingStoreAdapter

        return BlockingStoreAdapter(store)


@dataclass(frozen=True, slots=True)
class MemoryTier:
    """The in-process tier (L1): a bounded map of decoded objects.

    Args:
        max_entries: bound on the number of entries (``None``: no count bound).
        max_bytes: bound on the summed weights, an ``int`` or a string such as ``"256MiB"`` (``None``: none).
        policy: ``"tinylfu"`` (default: adaptive W-TinyLFU, frequency-aware admission with a window that grows
            toward LRU on recency-heavy traffic) or ``"lru"``. See docs/benchmarks.md, "Hit ratios".
        copy_on_read: keep encoded bytes and decode a private copy on every hit, so callers may mutate results.
        weigher: ``weigher(key, value) -> int`` weight of an entry; defaults to its encoded size in bytes.
        ttl_cap: longest time an L1 copy may live when a shared tier sits below it (``None``: no cap).

    Raises:
        ConfigError: a bound is not positive, both bounds are ``None``, or the policy is unknown.
    """

    scheme: ClassVar[str] = "memory"

    max_entries: int | None = 100_000
    max_bytes: int | str | None = "256MiB"
    policy: str = "tinylfu"
    copy_on_read: bool = False
    weigher: Callable[[str, Any], int] | None = field(default=None, compare=False)
    ttl_cap: float | None = None

    def __post_init__(self) -> None:
        if self.max_entries is not None:
            object.__setattr__(self, "max_entries", parse_int(self.max_entries, what="max_entries"))
        if self.max_bytes is not None:
            object.__setattr__(self, "max_bytes", parse_size(self.max_bytes, what="max_bytes"))
        if self.max_entries is None and self.max_bytes is None:
            raise ConfigError("MemoryTier needs max_entries or max_bytes: an unbounded cache only grows")
        if self.policy not in _POLICIES:
            raise ConfigError(f"unknown policy {self.policy!r}: use one of {', '.join(_POLICIES)}")
        if self.weigher is not None and not callable(self.weigher):
            raise ConfigError("weigher must be a callable (key, value) -> int")
        if self.ttl_cap is not None:
            from stratacache.core.config import validate_ttl

            try:
                validate_ttl(self.ttl_cap)
            except ValueError as exc:
                raise ConfigError(f"ttl_cap: {exc}") from None

    @classmethod
    def from_url(cls, url: TierURL) -> MemoryTier:
        """Build from ``memory://?max_entries=10000&max_bytes=64MiB&policy=lru&copy_on_read=false``."""
        allowed = {"max_entries", "max_bytes", "policy", "copy_on_read", "ttl_cap"}
        _check_params(url, allowed)
        if url.netloc or url.path.strip("/"):
            raise ConfigError("memory:// takes no host or path: use memory://?max_entries=...&max_bytes=...")
        kwargs: dict[str, Any] = {}
        p = url.params
        if "max_entries" in p:
            kwargs["max_entries"] = (
                None if p["max_entries"] == "none" else parse_int(p["max_entries"], what="max_entries")
            )
        if "max_bytes" in p:
            kwargs["max_bytes"] = None if p["max_bytes"] == "none" else p["max_bytes"]
        if "policy" in p:
            kwargs["policy"] = p["policy"]
        if "copy_on_read" in p:
            kwargs["copy_on_read"] = parse_bool(p["copy_on_read"], what="copy_on_read")
        if "ttl_cap" in p:
            try:
                kwargs["ttl_cap"] = float(p["ttl_cap"])
            except ValueError:
                raise ConfigError(f"ttl_cap: {p['ttl_cap']!r} is not a number") from None
        return cls(**kwargs)

    def build(self) -> MemoryStore:
        """Create the store."""
        from stratacache.tiers.memory import MemoryStore

        assert self.max_bytes is None or isinstance(self.max_bytes, int)
        return MemoryStore(
            max_entries=self.max_entries,
            max_bytes=self.max_bytes,
            policy=self.policy,
            copy_on_read=self.copy_on_read,
        )


def default_sqlite_path() -> Path:
    """``<user cache dir>/stratacache/cache.db`` (platformdirs), or ``$STRATACACHE_SQLITE_PATH``."""
    env = os.environ.get("STRATACACHE_SQLITE_PATH")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("stratacache", appauthor=False)) / "cache.db"


@dataclass(frozen=True, slots=True)
class SQLiteTier(TierSpec):
    """The embedded tier (L2): one SQLite file in WAL mode, shared by threads and processes, no server.

    Args:
        path: the database file (``~`` is expanded); defaults to :func:`default_sqlite_path`.
        max_bytes: bound on the stored bytes, enforced with approximate-LRU eviction (``None``: none).
        busy_timeout: seconds a writer waits for another process's write lock.

    Raises:
        ConfigError: a bad size or timeout, or a path that is a directory.
    """

    scheme: ClassVar[str] = "sqlite"

    path: str | os.PathLike[str] | None = None
    max_bytes: int | str | None = "1GiB"
    busy_timeout: float = 5.0

    def __post_init__(self) -> None:
        path = default_sqlite_path() if self.path is None else self.path
        if not isinstance(path, str | os.PathLike) or not str(path):
            raise ConfigError(f"SQLiteTier path must be a non-empty path, got {self.path!r}")
        resolved = Path(path).expanduser().absolute()  # a later chdir must not move the cache
        if resolved.is_dir():
            raise ConfigError(f"SQLiteTier path {resolved} is a directory; name a file such as {resolved / 'cache.db'}")
        object.__setattr__(self, "path", resolved)
        if self.max_bytes is not None:
            object.__setattr__(self, "max_bytes", parse_size(self.max_bytes, what="max_bytes"))
        if (
            isinstance(self.busy_timeout, bool)
            or not isinstance(self.busy_timeout, int | float)
            or not 0 <= self.busy_timeout <= 600
        ):
            raise ConfigError(f"busy_timeout must be a number of seconds in [0, 600], got {self.busy_timeout!r}")

    @classmethod
    def from_url(cls, url: TierURL) -> SQLiteTier:
        """Build from ``sqlite:///absolute/path.db?max_bytes=1GiB`` or ``sqlite://`` (default path)."""
        _check_params(url, {"max_bytes", "busy_timeout"})
        if url.netloc and url.netloc != "localhost":
            raise ConfigError(f"sqlite URL has a host {url.netloc!r}: use sqlite:///absolute/path.db (three slashes)")
        kwargs: dict[str, Any] = {"path": url.path or None}
        p = url.params
        if "max_bytes" in p:
            kwargs["max_bytes"] = None if p["max_bytes"] == "none" else p["max_bytes"]
        if "busy_timeout" in p:
            try:
                kwargs["busy_timeout"] = float(p["busy_timeout"])
            except ValueError:
                raise ConfigError(f"busy_timeout: {p['busy_timeout']!r} is not a number") from None
        return cls(**kwargs)

    def build(self, *, now: Callable[[], float]) -> SQLiteStore:
        """Open the store (creating the file and schema if needed).

        Raises:
            TierError: the file cannot be created or opened as an SQLite database in WAL mode.
        """
        from stratacache.tiers.sqlite import SQLiteStore

        assert isinstance(self.path, Path)
        assert self.max_bytes is None or isinstance(self.max_bytes, int)
        return SQLiteStore(self.path, max_bytes=self.max_bytes, busy_timeout=float(self.busy_timeout), now=now)


def _check_params(url: TierURL, allowed: set[str]) -> None:
    unknown = set(url.params) - allowed
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(sorted(unknown))} for {url.scheme}:// "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
