"""Stateful property tests: a ``sc.Cache`` against a model (a dict plus a FakeClock).

The model tracks every live entry with its expiry and tags. With bounds large enough that nothing is evicted
the cache must agree with the model exactly; with tight bounds the invariant is weaker but still strict about
lies: a read returns the model's value or a miss, never a wrong, expired, deleted or invalidated value.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import stratacache as sc
from stratacache.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable

MISS = object()

KEYS: list[Any] = [
    "a",
    "b",
    "(a)",
    ("a",),
    ("t", 1),
    ("t", 1.0),  # == ("t", 1) in Python, another key in the cache
    ("t", True),  # likewise
    ("u", None, b"x"),
]
READBACK = [k for i, k in enumerate(KEYS) if k not in KEYS[:i]]  # one of each Python-equal group
TAGS = ["t1", "t2", "t3"]

keys = st.sampled_from(KEYS)
# Python-equal keys cannot share one dict (get_many's result, set_many's mapping): unique by equality
key_lists = st.lists(keys, unique=True, max_size=5)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.binary(max_size=10)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=8,
)
ttls = st.sampled_from([None, 1.0, 5.0, 30.0])
tag_sets = st.lists(st.sampled_from(TAGS), unique=True, max_size=2)
advances = st.sampled_from([0.5, 1.0, 4.0, 10.0, 31.0])


def ident(key: Any) -> Any:
    """Type-strict identity of a key (``1``, ``1.0`` and ``True`` differ), independent of the cache's encoding."""
    if type(key) is tuple:
        return tuple((type(p).__name__, float.hex(p) if type(p) is float else p) for p in key)
    return ("str", key)


def same(a: Any, b: Any) -> bool:
    """Type-strict equality of values (msgpack round-trips keep types for these values)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return float.hex(a) == float.hex(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@dataclass
class Entry:
    value: Any
    expires_at: float | None
    tags: frozenset[str]


class CacheMachine(RuleBasedStateMachine):
    """Base machine; subclasses choose the tiers and whether eviction may happen (``exact``)."""

    exact: ClassVar[bool] = True
    make_tiers: ClassVar[Callable[[Path], tuple[Any, ...]]]

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="sc-state-"))
        self.clock = FakeClock()
        self.cache = sc.Cache(*type(self).make_tiers(self.tmp), namespace="sm", ttl=None, clock=self.clock)
        self.model: dict[Any, Entry] = {}
        self.maybe_present: set[Any] = set()  # written since last deleted (may still be stored, dead or not)

    # ------------------------------------------------------------------ model

    def live(self, key: Any) -> Any:
        entry = self.model.get(ident(key))
        if entry is None:
            return MISS
        if entry.expires_at is not None and self.clock.now() >= entry.expires_at:
            del self.model[ident(key)]
            return MISS
        return entry.value

    def remember(self, key: Any, value: Any, ttl: float | None, tags: list[str]) -> None:
        expires_at = None if ttl is None else self.clock.now() + ttl
        self.model[ident(key)] = Entry(value, expires_at, frozenset(tags))
        self.maybe_present.add(ident(key))

    def check_read(self, key: Any, got: Any) -> None:
        expected = self.live(key)
        if expected is MISS:
            assert got is MISS, f"{key!r}: expected a miss, got {got!r}"
        elif self.exact:
            assert got is not MISS, f"{key!r}: expected {expected!r}, got a miss"
            assert same(got, expected), f"{key!r}: expected {expected!r}, got {got!r}"
        else:
            assert got is MISS or same(got, expected), f"{key!r}: expected {expected!r} or a miss, got {got!r}"

    # ------------------------------------------------------------------ rules

    @rule(key=keys, value=values, ttl=ttls, tags=tag_sets)
    def set(self, key: Any, value: Any, ttl: float | None, tags: list[str]) -> None:
        self.cache.set(key, value, ttl=ttl, tags=tags)
        self.remember(key, value, ttl, tags)

    @rule(items=st.lists(st.tuples(keys, values), unique_by=lambda kv: kv[0], max_size=4), ttl=ttls, tags=tag_sets)
    def set_many(self, items: list[tuple[Any, Any]], ttl: float | None, tags: list[str]) -> None:
        self.cache.set_many(dict(items), ttl=ttl, tags=tags)
        for key, value in items:
            self.remember(key, value, ttl, tags)

    @rule(key=keys)
    def get(self, key: Any) -> None:
        self.check_read(key, self.cache.get(key, MISS))

    @rule(ks=key_lists)
    def get_many(self, ks: list[Any]) -> None:
        got = self.cache.get_many(ks)
        assert set(got) <= set(ks)
        for key in ks:
            self.check_read(key, got.get(key, MISS))

    @rule(key=keys, value=values, ttl=ttls, tags=tag_sets)
    def get_or_load(self, key: Any, value: Any, ttl: float | None, tags: list[str]) -> None:
        calls: list[int] = []

        def loader() -> Any:
            calls.append(1)
            return value

        expected = self.live(key)
        got = self.cache.get_or_load(key, loader, ttl=ttl, tags=tags)
        if calls:
            assert calls == [1]
            assert expected is MISS or not self.exact, f"{key!r}: loader ran over a live entry"
            assert same(got, value)
            self.remember(key, value, ttl, tags)
        else:
            assert expected is not MISS, f"{key!r}: no entry, but the loader did not run (got {got!r})"
            assert same(got, expected)

    @rule(key=keys)
    def delete(self, key: Any) -> None:
        was_live = self.live(key) is not MISS
        maybe = ident(key) in self.maybe_present
        result = self.cache.delete(key)
        self.model.pop(ident(key), None)
        self.maybe_present.discard(ident(key))
        if not maybe:
            assert result is False
        if was_live and self.exact:
            assert result is True

    @rule(ks=key_lists)
    def delete_many(self, ks: list[Any]) -> None:
        n_live = sum(self.live(k) is not MISS for k in ks)
        n_maybe = sum(ident(k) in self.maybe_present for k in ks)
        result = self.cache.delete_many(ks)
        for k in ks:
            self.model.pop(ident(k), None)
            self.maybe_present.discard(ident(k))
        assert result <= n_maybe
        if self.exact:
            assert result >= n_live

    @rule(tags=st.lists(st.sampled_from(TAGS), unique=True, min_size=1, max_size=2))
    def invalidate_tags(self, tags: list[str]) -> None:
        self.cache.invalidate_tags(*tags)
        for k in [k for k, e in self.model.items() if e.tags & set(tags)]:
            del self.model[k]

    @rule()
    def clear(self) -> None:
        self.cache.clear()
        self.model.clear()

    @rule(seconds=advances)
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def nothing_lies(self) -> None:
        # after every step, read every key back (one batch: the get_many path)
        got = self.cache.get_many(READBACK)
        for key in READBACK:
            self.check_read(key, got.get(key, MISS))

    @invariant()
    def tiers_hold_only_written_keys(self) -> None:
        for tier in self.cache.stats().tiers:
            assert 0 <= tier.entries <= len(self.maybe_present), tier
            assert tier.bytes >= 0

    def teardown(self) -> None:
        try:
            db = self.tmp / "cache.db"
            if db.exists():
                stats = self.cache.stats()
                assert (stats["sqlite"].entries, stats["sqlite"].bytes) == sqlite_totals(db)
            self.cache.close()
            if db.exists():
                entries, nbytes = sqlite_totals(db)
                conn = sqlite3.connect(db)
                try:
                    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                    meta = dict(conn.execute("SELECT k, v FROM sc_meta").fetchall())
                finally:
                    conn.close()
                assert (meta["entries"], meta["bytes"]) == (entries, nbytes)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def sqlite_totals(db: Path) -> tuple[int, int]:
    """``(rows, summed sizes)`` of the entries table, read over a connection of our own."""
    conn = sqlite3.connect(db)
    try:
        entries, nbytes = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM sc_entries").fetchone()
    finally:
        conn.close()
    return int(entries), int(nbytes)


EXACT = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _big_memory(tmp: Path) -> tuple[Any, ...]:
    return (sc.MemoryTier(max_entries=10_000, max_bytes="64MiB"),)


def _sqlite(tmp: Path) -> tuple[Any, ...]:
    return (sc.SQLiteTier(tmp / "cache.db", max_bytes=None),)


def _memory_over_sqlite(tmp: Path) -> tuple[Any, ...]:
    return (sc.MemoryTier(max_entries=10_000, max_bytes="64MiB"), sc.SQLiteTier(tmp / "cache.db", max_bytes=None))


def _tight_memory(tmp: Path) -> tuple[Any, ...]:
    return (sc.MemoryTier(max_entries=3, max_bytes="64MiB"),)


def _tight_sqlite(tmp: Path) -> tuple[Any, ...]:
    return (sc.SQLiteTier(tmp / "cache.db", max_bytes=600),)


def _tight_memory_over_tight_sqlite(tmp: Path) -> tuple[Any, ...]:
    return (sc.MemoryTier(max_entries=2, max_bytes="64MiB"), sc.SQLiteTier(tmp / "cache.db", max_bytes=600))


def _tight_tinylfu_over_tight_sqlite(tmp: Path) -> tuple[Any, ...]:
    with warnings.catch_warnings():  # the experimental policy announces itself; the machine holds it to the model
        warnings.simplefilter("ignore", UserWarning)
        l1 = sc.MemoryTier(max_entries=3, max_bytes="64MiB", policy="tinylfu")
    return (l1, sc.SQLiteTier(tmp / "cache.db", max_bytes=600))


class MemoryMachine(CacheMachine):
    make_tiers = staticmethod(_big_memory)


class SQLiteMachine(CacheMachine):
    make_tiers = staticmethod(_sqlite)


class MemoryOverSQLiteMachine(CacheMachine):
    make_tiers = staticmethod(_memory_over_sqlite)


class TightMemoryMachine(CacheMachine):
    exact = False
    make_tiers = staticmethod(_tight_memory)


class TightSQLiteMachine(CacheMachine):
    exact = False
    make_tiers = staticmethod(_tight_sqlite)


class TightMemoryOverSQLiteMachine(CacheMachine):
    exact = False
    make_tiers = staticmethod(_tight_memory_over_tight_sqlite)


class TightTinyLFUOverSQLiteMachine(CacheMachine):
    exact = False
    make_tiers = staticmethod(_tight_tinylfu_over_tight_sqlite)


TestMemoryOnly = MemoryMachine.TestCase
TestSQLiteOnly = SQLiteMachine.TestCase
TestMemoryOverSQLite = MemoryOverSQLiteMachine.TestCase
TestTightMemoryOnly = TightMemoryMachine.TestCase
TestTightSQLiteOnly = TightSQLiteMachine.TestCase
TestTightMemoryOverSQLite = TightMemoryOverSQLiteMachine.TestCase
TestTightTinyLFUOverSQLite = TightTinyLFUOverSQLiteMachine.TestCase
for _case in (
    TestMemoryOnly,
    TestSQLiteOnly,
    TestMemoryOverSQLite,
    TestTightMemoryOnly,
    TestTightSQLiteOnly,
    TestTightMemoryOverSQLite,
    TestTightTinyLFUOverSQLite,
):
    _case.settings = EXACT
del _case
