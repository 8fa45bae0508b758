"""Expiry records (``tiers/expiry.py``): earliest first, nothing valid lost, compacted a bounded amount per call."""

from __future__ import annotations

import random

import pytest

from stratacache.tiers.expiry import ExpiryQueue


class Model:
    """The entries a store would hold: key -> the time its current record says."""

    def __init__(self) -> None:
        self.current: dict[str, float] = {}
        self.checked = 0

    def valid(self, key: str, t: float) -> bool:
        self.checked += 1
        return self.current.get(key) == t


@pytest.mark.parametrize("seed", range(30))
def test_random_operations_keep_order_and_lose_no_valid_record(seed: int) -> None:
    rng = random.Random(seed)
    q, m = ExpiryQueue(), Model()
    now = 0.0
    clock = 0.0  # write time: TTLs added to it, mostly in order, sometimes not (the heap)
    for _ in range(3000):
        op = rng.random()
        if op < 0.55:  # a write: new key or rewrite
            key = f"k{rng.randrange(200)}"
            clock += rng.random()
            t = clock + (100 if rng.random() < 0.8 else rng.uniform(1, 100))
            m.current[key] = t
            q.add(key, t)
            if q.needs_compaction(len(m.current)):
                q.start_compaction()
        elif op < 0.7:  # a delete or an eviction: the record stays, now invalid
            m.current.pop(f"k{rng.randrange(200)}", None)
        elif op < 0.85:
            if q.compacting:
                q.compact(m.valid, rng.randrange(1, 20))
            elif rng.random() < 0.2:
                q.start_compaction()
        else:  # reclaim
            now = max(now, clock - rng.uniform(0, 50))
            popped = q.due(now, rng.randrange(1, 10))
            assert [t for t, _ in popped] == sorted(t for t, _ in popped)
            assert all(t <= now for t, _ in popped)
            for t, k in popped:
                if m.valid(k, t):
                    del m.current[k]
        # every entry keeps a record at its time, and nothing due is left behind a later record
        assert {k: t for t, k in q.records() if m.current.get(k) == t} == m.current
    rest = q.due(float("inf"), 10**9)
    assert [t for t, _ in rest] == sorted(t for t, _ in rest)
    assert {k: t for t, k in rest if m.current.get(k) == t} == m.current
    assert len(q) == 0


def test_a_compaction_examines_at_most_its_budget_per_call_and_ends_with_one_record_per_entry() -> None:
    q, m = ExpiryQueue(), Model()
    for i in range(100_000):  # 100 keys rewritten 1,000 times each, in order and out of order
        key, t = f"k{i % 100}", 1000.0 + i if i % 3 else 1000.0 - i
        m.current[key] = t
        q.add(key, t)
    assert q.needs_compaction(len(m.current))
    q.start_compaction()
    calls = 0
    while q.compacting:
        before = m.checked
        q.compact(m.valid, 16)
        assert m.checked - before <= 16
        calls += 1
    assert calls >= 100_000 // 16
    assert len(q) == len(m.current) == 100
    assert {k: t for t, k in q.records()} == m.current
    assert not q.needs_compaction(len(m.current))


def test_records_added_during_a_compaction_stay_in_order() -> None:
    q, m = ExpiryQueue(), Model()
    for i in range(10):
        m.current[f"a{i}"] = float(i)
        q.add(f"a{i}", float(i))
    q.start_compaction()
    q.compact(m.valid, 4)  # a0..a3 moved to the front run, a4..a9 not examined yet
    q.add("late", 20.0)  # after everything: the back of the deque
    q.add("early", 0.5)  # before the last record: the heap
    m.current.update(late=20.0, early=0.5)
    popped = q.due(100.0, 100)
    assert [k for _, k in popped] == ["a0", "early", *(f"a{i}" for i in range(1, 10)), "late"]
    assert not q.compacting
