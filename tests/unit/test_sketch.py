"""The count-min sketch of W-TinyLFU: counting, 4-bit saturation, halving, the block layout's accuracy."""

from __future__ import annotations

import pytest

from stratacache.core.sketch import FrequencySketch


def test_counts_each_sighting_up_to_fifteen() -> None:
    s = FrequencySketch(1024, seed=1)
    assert s.frequency(42) == 0
    for n in range(1, 16):
        s.increment(42)
        assert s.frequency(42) == n
    s.increment(42)
    assert s.frequency(42) == 15
    assert s.frequency(43) == 0


def test_counters_saturate_at_four_bits_without_spilling() -> None:
    s = FrequencySketch(1024, seed=2)
    for _ in range(100):
        s.increment(7)
    assert s.frequency(7) == 15
    for other in range(1000, 1100):
        assert s.frequency(other) == 0  # a saturated neighbour nibble never carries into the next one


def test_first_sighting_is_counted_and_ages_like_the_others() -> None:
    # no doorkeeper (Caffeine has none): the first sighting is in the counters and halving treats it like any count
    s = FrequencySketch(1024, seed=3)
    s.increment(5)
    assert s.frequency(5) == 1
    assert s.samples == 1
    s.halve()
    assert s.frequency(5) == 0
    for _ in range(3):
        s.increment(6)
    s.halve()
    assert s.frequency(6) == 1


def test_estimates_are_exact_at_a_light_load() -> None:
    # 4 counters in 4 different words of a block: a key's rows are crowded by different neighbours, so the
    # minimum removes most collisions (with all 4 counters in one word, a crowded word spoiled every row at once)
    s = FrequencySketch(1024, seed=10)
    for k in range(1024):
        for _ in range(3):
            s.increment(k)
    estimates = [s.frequency(k) for k in range(1024)]
    assert min(estimates) == 3
    assert sum(e == 3 for e in estimates) >= 0.97 * 1024
    unseen = [s.frequency(k) for k in range(10_000, 11_024)]
    assert sum(e == 0 for e in unseen) >= 0.85 * 1024


def test_halving_ages_every_counter() -> None:
    s = FrequencySketch(1024, seed=4)
    for key, times in ((1, 16), (2, 9), (3, 5)):
        for _ in range(times):
            s.increment(key)
    samples = s.samples
    s.halve()
    assert [s.frequency(k) for k in (1, 2, 3)] == [7, 4, 2]
    assert s.samples == samples // 2


def test_halving_happens_after_ten_times_capacity_samples() -> None:
    s = FrequencySketch(64, seed=5)
    assert s.sample_size == 640
    for _ in range(15):
        s.increment(-1)
    assert s.frequency(-1) == 15
    key = 0
    while s.samples > 0 and s.frequency(-1) == 15:
        key += 1
        s.increment(key)  # distinct keys: each one moves a counter, a sample
        assert key < 640
    assert s.frequency(-1) <= 7
    assert s.samples < s.sample_size


def test_saturated_counters_do_not_count_as_samples() -> None:
    s = FrequencySketch(64, seed=6)
    for _ in range(1000):
        s.increment(9)
    assert s.samples == 15  # fifteen counter increments, then nothing moves


def test_seed_changes_the_hashing() -> None:
    a, b = FrequencySketch(16, seed=1), FrequencySketch(16, seed=2)
    for k in range(40):
        for _ in range(3):
            a.increment(k)
            b.increment(k)
    collisions_a = [a.frequency(k) for k in range(1000, 1400)]
    collisions_b = [b.frequency(k) for k in range(1000, 1400)]
    assert collisions_a != collisions_b


def test_growth_keeps_every_estimate() -> None:
    s = FrequencySketch(100, seed=7)
    keys = list(range(1, 400))  # more keys than the table holds: collisions inflate some estimates
    for k in keys:
        for _ in range(k % 9):
            s.increment(k)
    before = [s.frequency(k) for k in keys]
    size = len(s._table)
    s.ensure_capacity(120)  # still 128 slots: the same table, the period follows
    assert len(s._table) == size
    assert s.sample_size == 1200
    s.ensure_capacity(129)  # 256 slots, then 4096: every estimate survives each growth
    assert len(s._table) == 2 * size
    assert [s.frequency(k) for k in keys] == before
    s.ensure_capacity(4000)
    assert len(s._table) == 32 * size
    assert [s.frequency(k) for k in keys] == before
    assert s.capacity == 4000
    assert s.sample_size == 40_000
    # and it goes on counting
    s.increment(1)
    assert s.frequency(1) == before[0] + 1


def test_clear() -> None:
    s = FrequencySketch(16, seed=8)
    for _ in range(4):
        s.increment(1)
    s.clear()
    assert s.frequency(1) == 0
    assert s.samples == 0


@pytest.mark.parametrize("key", [0, -1, 2**64 + 3, -(2**70)])
def test_any_int_hash(key: int) -> None:
    s = FrequencySketch(16, seed=9)
    s.increment(key)
    s.increment(key)
    assert s.frequency(key) == 2
