"""The circuit breaker's state machine, driven by an explicit clock."""

from __future__ import annotations

import pytest

from stratacache.core.breaker import CLOSED, HALF_OPEN, OPEN, Breaker
from stratacache.errors import ConfigError


def test_opens_after_consecutive_failures_and_refuses_until_its_time_is_up() -> None:
    b = Breaker(failures=3, open_for=1.0)
    for _ in range(2):
        assert b.allow(0.0)
        b.failure(0.0)
    assert b.state == CLOSED
    b.failure(0.0)
    assert b.state == OPEN
    assert b.opened == 1
    assert not b.allow(0.5)
    assert b.allow(1.0)  # the probe
    assert b.state == HALF_OPEN
    assert not b.allow(1.0)  # only one probe at a time


def test_a_successful_probe_closes_and_a_failed_one_reopens() -> None:
    b = Breaker(failures=1, open_for=1.0)
    b.failure(0.0)
    assert b.allow(1.0)
    b.failure(1.0)
    assert b.state == OPEN
    assert not b.allow(1.5)
    assert b.allow(2.0)
    b.success()
    assert b.state == CLOSED
    assert b.allow(2.0)


def test_a_success_resets_the_consecutive_count() -> None:
    b = Breaker(failures=3, ratio=1.0)
    for _ in range(10):
        b.failure(0.0)
        b.failure(0.0)
        b.success()
    assert b.state == CLOSED


def test_failure_ratio_over_the_window_opens() -> None:
    b = Breaker(failures=100, ratio=0.5, window=10)
    for i in range(10):
        if i % 2:
            b.failure(0.0)
        else:
            b.success()
    assert b.state == OPEN


def test_a_lost_probe_frees_its_slot_after_open_for() -> None:
    b = Breaker(failures=1, open_for=1.0)
    b.failure(0.0)
    assert b.allow(1.0)  # probe taken, never reported (caller cancelled)
    assert not b.allow(1.5)
    assert b.allow(2.0)


def test_reset_closes() -> None:
    b = Breaker(failures=1)
    b.failure(0.0)
    b.reset()
    assert b.state == CLOSED
    assert b.allow(0.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"failures": 0}, {"failures": True}, {"ratio": 0}, {"ratio": 1.5}, {"window": 1}, {"open_for": 0}],
)
def test_bad_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Breaker(**kwargs)  # type: ignore[arg-type]
