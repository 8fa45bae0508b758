"""The in-process store: count and byte bounds, LRU order, amortized expiry, weights, threads."""

from __future__ import annotations

import os
import random
import threading
from collections import OrderedDict
from typing import Any

import pytest

from stratacache.core.envelope import Envelope
from stratacache.errors import ValueTooLargeError
from stratacache.testing import FakeClock
from stratacache.tiers.memory import MemoryStore

T0 = 1_700_000_000.0


def env(
    value: Any = "v", *, size: int = 1, expires_at: float | None = None, stale_until: float | None = None
) -> Envelope[Any]:
    return Envelope(value, 1, T0, expires_at, stale_until, 0.0, 1, (0,), (), size)


def keys_of(store: MemoryStore, candidates: list[str]) -> list[str]:
    return [k for k in candidates if store.get(k) is not None]


def test_set_get_delete() -> None:
    s = MemoryStore(max_entries=10, max_bytes=None)
    e = env("hello", size=5)
    s.set("a", e, T0)
    assert s.get("a") is e
    assert s.usage() == (1, 5)
    assert s.delete("a") is True
    assert s.delete("a") is False
    assert s.get("a") is None
    assert s.usage() == (0, 0)


def test_replacing_an_entry_fixes_the_byte_count() -> None:
    s = MemoryStore(max_entries=10, max_bytes=None)
    s.set("a", env(size=10), T0)
    s.set("a", env(size=3), T0)
    assert s.usage() == (1, 3)


def test_count_bound_evicts_least_recently_used() -> None:
    s = MemoryStore(max_entries=3, max_bytes=None)
    for k in "abc":
        s.set(k, env(k), T0)
    assert s.get("a") is not None  # a is now the most recent: b is the LRU
    s.set("d", env("d"), T0)
    assert keys_of(s, list("abcd")) == ["a", "c", "d"]
    assert s.usage()[0] == 3
    assert s.counters.evictions == 1


def test_lru_order_follows_reads_and_rewrites() -> None:
    s = MemoryStore(max_entries=4, max_bytes=None)
    for k in "abcd":
        s.set(k, env(k), T0)
    s.get("b")
    s.set("a", env("a2"), T0)  # rewrite refreshes too
    # order, oldest first: c, d, b, a
    s.set("e", env(), T0)
    assert s.get("c") is None
    s.set("f", env(), T0)
    assert s.get("d") is None
    assert keys_of(s, list("abef")) == list("abef")
    assert s.counters.evictions == 2


def test_byte_bound_evicts_until_it_fits() -> None:
    s = MemoryStore(max_entries=None, max_bytes=100)
    for i in range(5):
        s.set(f"k{i}", env(size=20), T0)
    assert s.usage() == (5, 100)
    s.set("big", env(size=50), T0)  # needs three 20-byte victims: k0, k1, k2
    assert s.usage() == (3, 90)
    assert keys_of(s, [f"k{i}" for i in range(5)] + ["big"]) == ["k3", "k4", "big"]
    assert s.counters.evictions == 3


def test_both_bounds_hold_under_random_writes() -> None:
    rng = random.Random(5)
    s = MemoryStore(max_entries=50, max_bytes=1000)
    for i in range(5000):
        s.set(f"k{rng.randrange(200)}", env(i, size=rng.randrange(1, 60)), T0)
        entries, nbytes = s.usage()
        assert entries <= 50
        assert nbytes <= 1000
    assert s.counters.evictions > 0


def test_byte_count_matches_the_entries() -> None:
    rng = random.Random(9)
    s = MemoryStore(max_entries=30, max_bytes=500)
    sizes: dict[str, int] = {}
    for i in range(3000):
        k = f"k{rng.randrange(60)}"
        if rng.random() < 0.2:
            s.delete(k)
        else:
            size = rng.randrange(1, 40)
            s.set(k, env(i, size=size), T0)
    for k in (f"k{i}" for i in range(60)):
        e = s.get(k)
        if e is not None:
            sizes[k] = e.size
    assert s.usage() == (len(sizes), sum(sizes.values()))


def test_check_weight() -> None:
    s = MemoryStore(max_entries=None, max_bytes=100)
    s.check_weight(100)
    with pytest.raises(ValueTooLargeError):
        s.check_weight(101)
    MemoryStore(max_entries=10, max_bytes=None).check_weight(10**12)


def test_value_too_large_is_a_value_error() -> None:
    assert issubclass(ValueTooLargeError, ValueError)


def test_expired_entries_are_reclaimed_by_later_writes_without_a_full_scan() -> None:
    clock = FakeClock(T0)
    s = MemoryStore(max_entries=None, max_bytes=10_000)
    n = 100
    for i in range(n):
        s.set(f"old{i}", env(size=10, expires_at=clock.now() + 60), clock.now())
    s.set("forever", env(size=10), clock.now())
    assert s.usage() == (n + 1, (n + 1) * 10)

    clock.advance(61)
    s.set("new0", env(size=10), clock.now())
    entries, _ = s.usage()
    reclaimed_by_one_write = n + 2 - entries
    assert 0 < reclaimed_by_one_write < n // 4, "one write should reclaim a few expired entries, not scan them all"

    writes = 1
    while s.usage()[0] > 1 + writes and writes < n:
        s.set(f"new{writes}", env(size=10), clock.now())
        writes += 1
    assert s.usage() == (1 + writes, (1 + writes) * 10)
    assert all(s.get(f"old{i}") is None for i in range(n))
    assert s.get("forever") is not None
    assert (s.counters.expirations, s.counters.evictions) == (n, 0)


def test_entries_not_yet_expired_are_kept() -> None:
    clock = FakeClock(T0)
    s = MemoryStore(max_entries=None, max_bytes=10_000)
    for i in range(10):
        s.set(f"short{i}", env(expires_at=T0 + 10), clock.now())
        s.set(f"long{i}", env(expires_at=T0 + 1000), clock.now())
    clock.advance(11)
    for i in range(20):
        s.set(f"w{i}", env(), clock.now())
    assert keys_of(s, [f"long{i}" for i in range(10)]) == [f"long{i}" for i in range(10)]
    assert keys_of(s, [f"short{i}" for i in range(10)]) == []


def test_stale_window_delays_reclaiming() -> None:
    clock = FakeClock(T0)
    s = MemoryStore(max_entries=None, max_bytes=10_000)
    s.set("k", env(expires_at=T0 + 10, stale_until=T0 + 100), clock.now())
    clock.advance(50)
    for i in range(10):
        s.set(f"w{i}", env(), clock.now())
    assert s.get("k") is not None
    clock.advance(51)
    for i in range(10):
        s.set(f"x{i}", env(), clock.now())
    assert s.get("k") is None


def test_rewritten_entry_is_not_reclaimed_by_its_old_expiry() -> None:
    clock = FakeClock(T0)
    s = MemoryStore(max_entries=None, max_bytes=10_000)
    s.set("k", env("old", expires_at=T0 + 10), clock.now())
    s.set("k", env("new", expires_at=T0 + 1000), clock.now())
    clock.advance(20)
    for i in range(10):
        s.set(f"w{i}", env(), clock.now())
    got = s.get("k")
    assert got is not None
    assert got.value == "new"
    assert s.counters.evictions == 0


def test_a_rewrite_that_lives_longer_adds_no_record_and_is_still_reclaimed_on_time() -> None:
    clock = FakeClock(T0)
    s = MemoryStore(max_entries=None, max_bytes=10_000)
    s.set("later", env("v1", expires_at=T0 + 10), clock.now())
    s.set("sooner", env("v1", expires_at=T0 + 50), clock.now())
    records = len(s._expiry)
    s.set("later", env("v2", expires_at=T0 + 30), clock.now())  # later: the record at T0 + 10 stands for it
    s.set("sooner", env("v2", expires_at=T0 + 20), clock.now())  # earlier: a record of its own
    assert len(s._expiry) == records + 1

    def writes_at(t: float) -> None:
        clock.advance(t - clock.now())
        for i in range(5):
            s.set(f"w{t}-{i}", env(size=0), clock.now())

    writes_at(T0 + 15)  # the old record of "later" comes due: moved to T0 + 30, the entry kept
    assert s._policy.peek("later") is not None
    writes_at(T0 + 25)
    assert s._policy.peek("sooner") is None  # reclaimed at its new, earlier expiry
    assert s._policy.peek("later") is not None
    writes_at(T0 + 35)
    assert s._policy.peek("later") is None  # reclaimed by writes alone, no read needed
    assert s.counters.expirations == 2


def test_expiry_bookkeeping_stays_bounded_when_one_key_is_rewritten() -> None:
    clock = FakeClock(T0)
    s = MemoryStore(max_entries=None, max_bytes=10_000)
    for i in range(20_000):
        s.set("hot", env(i, expires_at=T0 + 10_000 + i), clock.now())
    assert s.usage() == (1, 1)
    # compactions start past 2 x entries + 1024 records and examine 16 per write (adding 1): bounded a bit above
    assert len(s._expiry) <= (2 * 1 + 1024) * 16 // 15 + 2


def test_one_ttl_keeps_expiry_records_in_write_order_without_tuples() -> None:
    # memory layout: with non-decreasing expiry times, a record is a key and the envelope's own float in two deques
    clock = FakeClock(T0)
    s = MemoryStore(max_entries=None, max_bytes=10_000)
    envs = []
    for i in range(100):
        e = env(size=1, expires_at=clock.now() + 60)
        envs.append(e)
        s.set(f"k{i}", e, clock.now())
        clock.advance(0.5)
    assert s._expiry._heap == []
    assert list(s._expiry._keys) == [f"k{i}" for i in range(100)]
    assert all(t is e.expires_at for t, e in zip(s._expiry._times, envs, strict=True))


def test_expiry_out_of_write_order_is_reclaimed_earliest_first() -> None:
    clock = FakeClock(T0)
    s = MemoryStore(max_entries=None, max_bytes=10_000)
    rng = random.Random(7)
    deadlines = {f"k{i}": T0 + rng.uniform(1, 100) for i in range(200)}  # per-entry TTLs: most go to the heap
    for k, t in deadlines.items():
        s.set(k, env(size=1, expires_at=t), clock.now())
    assert s._expiry._heap, "expiry times that go back in time use the heap"
    for now in (T0 + 25, T0 + 50, T0 + 101):
        clock.advance(now - clock.now())
        for i in range(400):  # reclaiming budget of 4 per write: enough for every due record
            s.set(f"w{now}-{i}", env(size=0), clock.now())
        alive = {k for k in deadlines if s._policy.peek(k) is not None}
        assert alive == {k for k, t in deadlines.items() if t > now}
    assert (s.counters.expirations, s.counters.evictions) == (len(deadlines), 0)


def test_compacted_expiry_records_are_one_per_entry() -> None:
    clock = FakeClock(T0)
    s = MemoryStore(max_entries=None, max_bytes=10_000)
    for i in range(3000):  # 10 keys rewritten with shuffled deadlines: records pile up, then are rebuilt
        s.set(f"k{i % 10}", env(i, size=1, expires_at=T0 + 1000 + (i * 7919) % 3000), clock.now())
    q = s._expiry
    if not q.compacting:
        q.start_compaction()
    while q.compacting:
        q.compact(s._valid, 100)
    records = q.records()
    assert sorted(k for _, k in records) == [f"k{i}" for i in range(10)]
    assert all(s._valid(k, t) for t, k in records)
    clock.advance(5000)
    s.set("w", env(size=1), clock.now())
    s.set("w", env(size=1), clock.now())
    s.set("w", env(size=1), clock.now())
    assert s.usage() == (1, 1)


def test_set_many_and_delete_many() -> None:
    s = MemoryStore(max_entries=3, max_bytes=None)
    s.set_many([(k, env(k)) for k in "abcde"], T0)
    assert keys_of(s, list("abcde")) == ["c", "d", "e"]
    assert s.counters.evictions == 2
    assert s.delete_many(["c", "d", "zz"]) == 2
    assert s.usage()[0] == 1


def test_delete_if_only_removes_the_same_envelope() -> None:
    s = MemoryStore(max_entries=3, max_bytes=None)
    first = env("first")
    s.set("k", first, T0)
    s.set("k", env("second"), T0)
    s.delete_if("k", first)
    assert s.get("k") is not None
    current = s.get("k")
    assert current is not None
    s.delete_if("k", current)
    assert s.get("k") is None


def test_clear() -> None:
    s = MemoryStore(max_entries=3, max_bytes=None)
    s.set_many([(k, env(k, size=2, expires_at=T0 + 1)) for k in "abc"], T0)
    s.clear()
    assert s.usage() == (0, 0)
    assert s.get("a") is None
    s.set("x", env(size=2), T0 + 5)
    assert s.usage() == (1, 2)


def test_unknown_policy() -> None:
    with pytest.raises(ValueError, match="fifo"):
        MemoryStore(max_entries=1, max_bytes=None, policy="fifo")


# ------------------------------------------------------------------ threads


def _run_threads(targets: list[Any]) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrap(fn: Any) -> Any:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return errors


def test_threads_writing_and_deleting_keep_the_bounds_and_the_accounting() -> None:
    s = MemoryStore(max_entries=64, max_bytes=2000)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for i in range(4000):
            k = f"k{rng.randrange(256)}"
            if rng.random() < 0.25:
                s.delete(k)
            elif rng.random() < 0.1:
                s.delete_many([k, f"k{rng.randrange(256)}"])
            else:
                s.set(k, env(i, size=rng.randrange(1, 50)), T0)
            entries, _ = s.usage()
            assert entries <= 64 + 8  # readers may see another thread's insert before its eviction

    assert _run_threads([lambda seed=seed: worker(seed) for seed in range(8)]) == []
    entries, nbytes = s.usage()
    assert entries <= 64
    assert nbytes <= 2000
    live = [e for e in (s.get(f"k{i}") for i in range(256)) if e is not None]
    assert (len(live), sum(e.size for e in live)) == (entries, nbytes)
    assert s.counters.evictions > 0


def test_threads_reading_writing_and_deleting_within_the_bounds() -> None:
    # readers are lock-free; with the key space inside the count bound no eviction runs concurrently with them
    s = MemoryStore(max_entries=1000, max_bytes=None)
    stop = threading.Event()
    writers_left = [4]
    lock = threading.Lock()

    def reader() -> None:
        # bounded in count, and yielding between passes: a spinning reader starves the lock-holding writers of
        # the GIL (a lock convoy that once stretched this test past a minute)
        for _ in range(300):
            if stop.is_set():
                return
            for i in range(128):
                e = s.get(f"k{i}")
                assert e is None or e.value[0] == i
            os.sched_yield()  # releases the GIL

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for n in range(2000):
                i = rng.randrange(128)
                if rng.random() < 0.3:
                    s.delete(f"k{i}")
                else:
                    s.set(f"k{i}", env((i, n), size=3), T0)
        finally:
            with lock:
                writers_left[0] -= 1
                if not writers_left[0]:
                    stop.set()

    errors = _run_threads([reader, reader, reader, *(lambda seed=seed: writer(seed) for seed in range(4))])
    assert errors == []
    live = [e for e in (s.get(f"k{i}") for i in range(128)) if e is not None]
    assert s.usage() == (len(live), 3 * len(live))


def test_a_lookup_racing_a_segment_move_is_repeated_under_the_lock() -> None:
    # W-TinyLFU keeps its entries in three segments and moves them under the store's lock, while readers look
    # them up without it: a lookup between the two steps of a move finds the key in no segment. The store must
    # then repeat it under the lock (so it sees the move completed), never report the key absent.
    s = MemoryStore(max_entries=1000, max_bytes=None, policy="tinylfu")
    pol: Any = s._policy
    main = threading.current_thread()
    real_lock = s._lock
    reader_waits = threading.Event()
    readers: list[threading.Thread] = []
    found: list[Any] = []

    class Gate:  # the store's lock, telling when the reader thread asks for it
        def __enter__(self) -> bool:
            if threading.current_thread() is not main:
                reader_waits.set()
            return real_lock.__enter__()

        def __exit__(self, *exc: object) -> None:
            real_lock.__exit__(*exc)

    class Probation(OrderedDict):  # type: ignore[type-arg]
        def __setitem__(self, key: str, value: Any) -> None:
            if key == "a" and not readers:  # "a" left the window and is not in probation yet: a reader looks now
                reader = threading.Thread(target=lambda: found.append(s.get("a")))
                readers.append(reader)
                reader.start()
                reader_waits.wait(5)  # it missed without the lock and now waits for it (or it returned a miss)
            super().__setitem__(key, value)

    pol._probation = Probation()
    s._lock = Gate()  # type: ignore[assignment]
    s.set("a", env("A"), T0)
    for i in range(pol._window_max):  # fill the window: the last write moves "a", its oldest, to probation
        s.set(f"k{i}", env(i), T0)
    assert len(readers) == 1
    readers[0].join(5)
    assert reader_waits.is_set()
    assert len(found) == 1
    assert found[0] is not None
    assert found[0].value == "A"
