"""Freshness decisions (pure): is an envelope fresh, stale, or dead, and when does a new one expire.

``classify`` (with its stale window) and ``xfetch_due`` are the building blocks of stale-while-revalidate,
fail-safe and early refresh; the engine's hit path inlines the plain expiry comparison.
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import random

    from stratacache.core.envelope import Envelope

__all__ = ["Freshness", "classify", "expiry", "xfetch_due"]


class Freshness(enum.IntEnum):
    """Verdict on a stored envelope."""

    FRESH = 0
    """Serve it."""
    STALE = 1
    """Expired but inside its stale window: usable only by stale-while-revalidate or fail-safe."""
    DEAD = 2
    """Past every window, or invalidated by a generation bump: a miss."""


def classify(env: Envelope[Any], now: float) -> Freshness:
    """Classify by time alone (generations are checked by ``invalidation.generations.Generations.current``)."""
    exp = env.expires_at
    if exp is None or now < exp:
        return Freshness.FRESH
    st = env.stale_until
    if st is not None and now < st:
        return Freshness.STALE
    return Freshness.DEAD


def expiry(now: float, ttl: float | None, jitter: float, rng: random.Random | None) -> float | None:
    """Absolute expiry for a new entry; ``jitter`` in [0, 1) shortens the TTL by up to that fraction."""
    if ttl is None:
        return None
    if jitter and rng is not None:
        ttl *= 1.0 - jitter * rng.random()
    return now + ttl


def xfetch_due(env: Envelope[Any], now: float, beta: float, rng: random.Random) -> bool:
    """XFetch (Vattani et al., VLDB 2015): recompute early when ``now - delta*beta*ln(u) >= expiry``."""
    exp = env.expires_at
    if exp is None or beta <= 0 or env.delta <= 0:
        return False
    u = rng.random() or 1e-12
    return now - env.delta * beta * math.log(u) >= exp
