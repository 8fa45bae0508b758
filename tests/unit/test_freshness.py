"""Freshness decisions: classify, expiry with seeded jitter, XFetch, generation checks."""

from __future__ import annotations

import math
import random

import pytest

from stratacache.core.envelope import Envelope
from stratacache.core.freshness import Freshness, classify, expiry, xfetch_due

NOW = 1_700_000_000.0


def env(
    *,
    expires_at: float | None,
    stale_until: float | None = None,
    delta: float = 0.0,
    gens: tuple[int, ...] = (0,),
    tags: tuple[str, ...] = (),
) -> Envelope[bytes]:
    return Envelope(b"v", 1, NOW, expires_at, stale_until, delta, 1, gens, tags, 1)


class FixedRandom(random.Random):
    """A random source that always draws ``value`` (an input to the function under test, not a mock of it)."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


# ------------------------------------------------------------------ classify


def test_no_expiry_is_always_fresh() -> None:
    e = env(expires_at=None)
    assert classify(e, NOW) is Freshness.FRESH
    assert classify(e, NOW + 1e9) is Freshness.FRESH


def test_expiry_boundary_is_exclusive() -> None:
    e = env(expires_at=NOW + 10)
    assert classify(e, NOW + 9.999) is Freshness.FRESH
    assert classify(e, NOW + 10) is Freshness.DEAD
    assert classify(e, NOW + 11) is Freshness.DEAD


def test_stale_window() -> None:
    e = env(expires_at=NOW + 10, stale_until=NOW + 20)
    assert classify(e, NOW + 5) is Freshness.FRESH
    assert classify(e, NOW + 10) is Freshness.STALE
    assert classify(e, NOW + 19.9) is Freshness.STALE
    assert classify(e, NOW + 20) is Freshness.DEAD


def test_gc_at_is_the_end_of_the_last_window() -> None:
    assert env(expires_at=NOW + 10).gc_at() == NOW + 10
    assert env(expires_at=NOW + 10, stale_until=NOW + 20).gc_at() == NOW + 20
    assert env(expires_at=None).gc_at() is None


# ------------------------------------------------------------------ expiry


def test_expiry_without_ttl_or_jitter() -> None:
    assert expiry(NOW, None, 0.5, random.Random(1)) is None
    assert expiry(NOW, 300.0, 0.0, random.Random(1)) == NOW + 300.0
    assert expiry(NOW, 300.0, 0.5, None) == NOW + 300.0


def test_jitter_shortens_within_bounds_and_is_reproducible() -> None:
    a = [expiry(NOW, 100.0, 0.2, rng) for rng in [random.Random(42)] for _ in range(200)]
    rng = random.Random(42)
    b = [expiry(NOW, 100.0, 0.2, rng) for _ in range(200)]
    assert a == b  # same seed, same expiries
    ttls = [x - NOW for x in a if x is not None]
    assert len(ttls) == 200
    assert all(80.0 <= t <= 100.0 for t in ttls)
    assert len(set(ttls)) > 100  # really spread
    assert min(ttls) < 82.0
    assert max(ttls) > 98.0


def test_jitter_with_a_fixed_draw() -> None:
    assert expiry(NOW, 100.0, 0.5, FixedRandom(0.5)) == pytest.approx(NOW + 75.0)
    assert expiry(NOW, 100.0, 0.5, FixedRandom(0.0)) == pytest.approx(NOW + 100.0)


def test_different_seeds_give_different_jitter() -> None:
    first = [expiry(NOW, 100.0, 0.3, r) for r in [random.Random(1)] for _ in range(10)]
    second = [expiry(NOW, 100.0, 0.3, r) for r in [random.Random(2)] for _ in range(10)]
    assert first != second


# ------------------------------------------------------------------ XFetch


def test_xfetch_never_for_entries_without_expiry_delta_or_beta() -> None:
    rng = FixedRandom(1e-9)
    assert not xfetch_due(env(expires_at=None, delta=5.0), NOW, 1.0, rng)
    assert not xfetch_due(env(expires_at=NOW + 1, delta=0.0), NOW, 1.0, rng)
    assert not xfetch_due(env(expires_at=NOW + 1, delta=5.0), NOW, 0.0, rng)
    assert not xfetch_due(env(expires_at=NOW + 1, delta=5.0), NOW, -1.0, rng)


def test_xfetch_threshold_with_a_fixed_draw() -> None:
    # u = e^-1 -> -ln(u) = 1: due exactly when now + delta * beta >= expiry
    rng = FixedRandom(math.exp(-1))
    e = env(expires_at=NOW + 10.0, delta=2.0)
    assert not xfetch_due(e, NOW + 5.9, 2.0, rng)
    assert xfetch_due(e, NOW + 6.0 + 1e-6, 2.0, rng)
    assert xfetch_due(e, NOW + 10.0, 2.0, rng)


def test_xfetch_always_due_once_expired() -> None:
    e = env(expires_at=NOW + 10.0, delta=1.0)
    rng = random.Random(7)
    assert all(xfetch_due(e, NOW + 10.0, 1.0, rng) for _ in range(1000))


def test_xfetch_zero_draw_does_not_crash() -> None:
    e = env(expires_at=NOW + 10.0, delta=1.0)
    assert xfetch_due(e, NOW + 9.99, 1.0, FixedRandom(0.0))
    assert not xfetch_due(e, NOW - 1000.0, 1.0, FixedRandom(0.0))


def test_xfetch_probability_rises_towards_expiry() -> None:
    e = env(expires_at=NOW + 100.0, delta=5.0)

    def rate(at: float) -> float:
        rng = random.Random(1234)
        return sum(xfetch_due(e, at, 1.0, rng) for _ in range(2000)) / 2000

    far, mid, near = rate(NOW), rate(NOW + 90.0), rate(NOW + 99.0)
    assert far == 0.0  # needs -ln(u) >= 20: u < 2e-9
    assert 0.05 < mid < 0.3  # P = e^-2 ~ 0.135
    assert near > 0.7  # P = e^-0.2 ~ 0.82
    assert far < mid < near


# ------------------------------------------------------------------ generations
