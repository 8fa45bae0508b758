"""How ``get_or_load`` trades freshness for availability and load (pure, validated at construction).

Every field is off by default: a cache without a policy serves only fresh values, loads on every miss and lets
the loader's exception through. Each field turns on one behaviour:

- ``stale_while_revalidate``: an entry that expired less than this many seconds ago is served at once, and one
  background refresh replaces it.
- ``fail_safe``: when the loader raises or times out, an entry that expired less than this many seconds ago is
  served instead of the error; the failing loader is then not called again for that key for
  ``fail_safe_throttle`` seconds (the stale value keeps being served).
- ``soft_timeout``: after this many seconds, a caller that has a stale value gets it and stops waiting; the load
  goes on in the background and stores its result.
- ``hard_timeout``: after this many seconds, a caller stops waiting with :class:`~stratacache.LoadTimeout` (or a
  stale value, under ``fail_safe``); the load goes on in the background and stores its result.
- ``early_refresh``: XFetch's ``beta`` (1.0 is the paper's choice): a fresh hit refreshes in the background with a
  probability that rises as expiry nears, scaled by how long the last load took (Vattani et al., VLDB 2015).
- ``refresh_ahead``: a fresh hit in the last part of its life (after this fraction of its TTL) refreshes in the
  background.
- ``negative_ttl``: a loader result of ``None`` ("not found") is cached this long instead of the normal TTL.
- ``lease_wait``: one loader per key across every process sharing the tier (a lease in the shared tier: Redis
  ``SET NX PX``, an SQLite row): a process that finds another's lease waits up to this many seconds for its value
  (polling with backoff), then follows ``on_lease_timeout``: ``"load"`` itself (the default), serve a ``"stale"``
  value if it has one (else :class:`~stratacache.LoadTimeout`), or ``"raise"`` :class:`~stratacache.LoadTimeout`.

An entry is kept by the tiers until ``max(stale_while_revalidate, fail_safe)`` after its expiry, so that a stale
value is there to serve. Invalidated entries (``delete``, ``set``, ``invalidate_tags``, ``clear``) are never
served, stale or not: staleness on purpose only ever concerns *expiry*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from stratacache.errors import ConfigError

__all__ = ["PLAIN", "LoadPolicy", "check_policy"]

_SECONDS: Final = (
    "stale_while_revalidate",
    "fail_safe",
    "soft_timeout",
    "hard_timeout",
    "negative_ttl",
    "lease_wait",
)
_ON_LEASE_TIMEOUT: Final = ("load", "stale", "raise")


def _seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or math.isinf(value):
        raise ConfigError(f"{name} must be a finite number of seconds or None, got {value!r}")
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class LoadPolicy:
    """Freshness and load options of ``get_or_load`` and decorated functions (see the module docstring).

    Pass one to a cache (``Cache(..., policy=LoadPolicy(...))``) as the default of every load, or to one call
    (``cache.get_or_load(key, loader, policy=...)``, ``@cache.cached(policy=...)``).

    Raises:
        ConfigError: a negative, NaN or infinite duration, ``soft_timeout >= hard_timeout``, a ``soft_timeout``
            without a stale window, a ``refresh_ahead`` outside ``(0, 1)``, a negative ``early_refresh`` or an
            unknown ``on_lease_timeout``.
    """

    stale_while_revalidate: float | None = None
    fail_safe: float | None = None
    fail_safe_throttle: float = 5.0
    soft_timeout: float | None = None
    hard_timeout: float | None = None
    early_refresh: float | None = None
    refresh_ahead: float | None = None
    negative_ttl: float | None = None
    lease_wait: float | None = None
    on_lease_timeout: str = "load"

    def __post_init__(self) -> None:
        for name in _SECONDS:
            object.__setattr__(self, name, _seconds(name, getattr(self, name)))
        throttle = _seconds("fail_safe_throttle", self.fail_safe_throttle)
        object.__setattr__(self, "fail_safe_throttle", throttle)
        if self.soft_timeout is not None and self.hard_timeout is not None and self.soft_timeout >= self.hard_timeout:
            raise ConfigError(
                f"soft_timeout ({self.soft_timeout}) must be shorter than hard_timeout ({self.hard_timeout})"
            )
        beta = self.early_refresh
        if beta is not None and (
            isinstance(beta, bool) or not isinstance(beta, int | float) or not math.isfinite(beta) or beta <= 0
        ):
            raise ConfigError(f"early_refresh (XFetch beta) must be a positive number, got {beta!r}")
        if self.on_lease_timeout not in _ON_LEASE_TIMEOUT:
            raise ConfigError(
                f"on_lease_timeout must be one of {', '.join(_ON_LEASE_TIMEOUT)}, got {self.on_lease_timeout!r}"
            )
        if self.soft_timeout is not None and self.stale_window is None:
            raise ConfigError("soft_timeout serves a stale value: it needs stale_while_revalidate or fail_safe")
        ahead = self.refresh_ahead
        if ahead is not None and (
            isinstance(ahead, bool) or not isinstance(ahead, int | float) or not 0.0 < ahead < 1.0
        ):
            raise ConfigError(f"refresh_ahead must be a fraction of the TTL in (0, 1), got {ahead!r}")

    @property
    def stale_window(self) -> float | None:
        """How long after expiry an entry must be kept to be served stale (``None``: not at all)."""
        windows = [w for w in (self.stale_while_revalidate, self.fail_safe) if w is not None]
        return max(windows) if windows else None

    @property
    def plain(self) -> bool:
        """True when nothing is on: ``get_or_load`` takes its shortest path."""
        return self == PLAIN

    @property
    def timed(self) -> bool:
        """True when a caller may stop waiting for a load (a soft or a hard timeout is set)."""
        return self.soft_timeout is not None or self.hard_timeout is not None


PLAIN: Final = LoadPolicy()


def check_policy(policy: object) -> LoadPolicy | None:
    """A policy argument, checked: ``None`` (the cache's own), ``PLAIN`` when nothing is on, else the policy.

    Raises:
        ConfigError: ``policy`` is not a :class:`LoadPolicy`.
    """
    if policy is None:
        return None
    if isinstance(policy, LoadPolicy):
        return PLAIN if policy.plain else policy
    raise ConfigError(f"policy must be a LoadPolicy, got {type(policy).__name__}")
