"""Scenario 2 of the consistency issue: reordered and duplicated fills against versioned invalidations.

A hypothesis state machine drives real ``sc.Cache`` objects over a versioned source (a dict of per-key versions):

- ``start_fill`` calls ``get_or_load`` in a thread whose loader reads the key's version from the source and then
  blocks; the step returns once the loader has read (the thread leads a load), the call has returned (a hit), or
  the thread is parked on another thread's load of the same key (it joined that flight). Fills of one key can be
  started many times, in one cache or in several (duplicates), and stay pending across any other steps;
- ``complete_fill`` lets any pending loader return, in any order;
- ``write`` commits a new version of a key to the source, then invalidates it: ``delete``, ``set`` of the new
  version, ``invalidate_tags`` of the key's own tag; ``write_all`` commits every key and invalidates the tag they
  share, or ``clear()`` s the namespace. The invalidation's version is "done" once the call has returned.

The rule is the staleness checker's (``stratacache.testing.staleness``): a read that started after version ``v``
of its key finished invalidating must not return a version older than ``v``. It is checked after every step for
every key through every cache without a load in flight (``get``; a read would poll that cache's backplane and
settle the race before the load completes), and for every ``get_or_load`` call against what was done when it
started.

Two configurations: one memory-only cache, and two memory+SQLite caches sharing one file (two processes, as far
as the SQLite backplane is concerned) beside an SQLite-only cache that shows what the shared file holds.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

import stratacache as sc
from stratacache.protection import singleflight

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

KEYS = ("a", "b")
WAIT = 30.0  # seconds: a "no hang" bound, never a pacing
SETTINGS = settings(
    max_examples=80,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Threads parked on a single flight they joined (see ``_count_parked_followers``), guarded by _COND.
_COND = threading.Condition()
_PARKED: set[int] = set()


class _ParkingEvent(threading.Event):
    """A single flight's event that notes which threads wait on it (followers committed to its result)."""

    def wait(self, timeout: float | None = None) -> bool:
        with _COND:
            _PARKED.add(threading.get_ident())
            _COND.notify_all()
        return super().wait(timeout)


def _count_parked_followers(monkeypatch: pytest.MonkeyPatch) -> None:
    fake: Any = types.SimpleNamespace(Event=_ParkingEvent, Lock=threading.Lock, get_ident=threading.get_ident)
    monkeypatch.setattr(singleflight, "threading", fake)


def _tags(key: str) -> list[str]:
    return [f"t:{key}", "all"]


@dataclass
class Call:
    """One ``get_or_load`` in its own thread."""

    key: str
    cache: int
    done_at_start: int  # the newest version invalidated before the call started
    loaded: threading.Event = field(default_factory=threading.Event)  # its loader has read the source
    release: threading.Event = field(default_factory=threading.Event)  # lets its loader return
    finished: threading.Event = field(default_factory=threading.Event)
    read_version: int | None = None
    result: list[Any] = field(default_factory=list)
    error: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None


class FillRaces(RuleBasedStateMachine):
    """The caches, the versioned source and the pending fills (subclasses choose the tiers)."""

    with_sqlite: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="fill-races-"))
        self.caches = self.make_caches()
        self.source = dict.fromkeys(KEYS, 1)
        self.done = dict.fromkeys(KEYS, 0)  # newest version whose invalidation has returned
        self.pending: list[Call] = []  # loaders blocked after their source read
        self.parked: list[Call] = []  # callers waiting on another caller's load

    def make_caches(self) -> list[sc.Cache]:
        if not self.with_sqlite:
            return [sc.Cache(sc.MemoryTier(max_entries=100), namespace="fr", ttl=None)]
        path = self.dir / "cache.db"
        two = [
            sc.Cache(sc.MemoryTier(max_entries=100), sc.SQLiteTier(path, max_bytes=None), namespace="fr", ttl=None)
            for _ in range(2)
        ]
        return [*two, sc.Cache(sc.SQLiteTier(path, max_bytes=None), namespace="fr", ttl=None)]

    def teardown(self) -> None:
        try:
            for call in self.pending:
                call.release.set()
            for call in [*self.pending, *self.parked]:
                assert call.thread is not None
                call.thread.join(WAIT)
            for cache in self.caches:
                cache.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---------------------------------------------------------------------------------------------- checks

    def _check_call(self, call: Call) -> None:
        assert not call.error, f"get_or_load({call.key!r}) raised {call.error[0]!r}"
        (value,) = call.result
        assert value >= call.done_at_start, (
            f"get_or_load({call.key!r}) in cache {call.cache} returned version {value}, but version "
            f"{call.done_at_start} had been invalidated before the call started"
        )

    @invariant()
    def no_cache_returns_an_invalidated_version(self) -> None:
        # A read polls its cache's backplane, which would settle a pending load's race before it completes:
        # a cache with a load in flight is checked once its loads are done (the SQLite-only one never loads).
        busy = {call.cache for call in [*self.pending, *self.parked]}
        for i, cache in enumerate(self.caches):
            if i in busy:
                continue
            for key in KEYS:
                value = cache.get(key)
                assert value is None or value >= self.done[key], (
                    f"cache {i} returned version {value} of {key!r}; version {self.done[key]} was invalidated"
                )

    @invariant()
    def parked_callers_that_returned_were_not_stale(self) -> None:
        for call in [c for c in self.parked if c.finished.is_set()]:
            self.parked.remove(call)
            self._check_call(call)

    # ---------------------------------------------------------------------------------------------- rules

    def _loader(self, call: Call) -> Callable[[], int]:
        def load() -> int:
            call.read_version = self.source[call.key]  # the database read
            with _COND:
                call.loaded.set()
                _COND.notify_all()
            assert call.release.wait(WAIT), "the test never let this loader return"
            return call.read_version

        return load

    @rule(key=st.sampled_from(KEYS), which=st.integers(0, 1))
    def start_fill(self, key: str, which: int) -> None:
        index = which % (2 if self.with_sqlite else 1)  # the caches with an L1 (the last one has none)
        call = Call(key, index, self.done[key])
        cache = self.caches[index]

        def run() -> None:
            try:
                call.result.append(cache.get_or_load(key, self._loader(call), tags=_tags(key)))
            except BaseException as exc:  # reported by the checks, in the test's thread
                call.error.append(exc)
            finally:
                with _COND:
                    call.finished.set()
                    _COND.notify_all()

        call.thread = threading.Thread(target=run, daemon=True)
        call.thread.start()
        ident = call.thread.ident
        with _COND:
            assert _COND.wait_for(
                lambda: call.loaded.is_set() or call.finished.is_set() or ident in _PARKED, timeout=WAIT
            ), "a get_or_load neither loaded, returned, nor joined another load"
            _PARKED.discard(ident)
        if call.loaded.is_set():
            self.pending.append(call)
        elif call.finished.is_set():
            self._check_call(call)  # a hit
        else:
            self.parked.append(call)

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def complete_fill(self, data: st.DataObject) -> None:
        call = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1), label="pending fill"))
        call.release.set()
        assert call.finished.wait(WAIT), "a released load did not return"
        self._check_call(call)
        assert call.result == [call.read_version]  # its caller is served what its loader read

    @rule(key=st.sampled_from(KEYS), how=st.sampled_from(["delete", "set", "tag"]), which=st.integers(0, 2))
    def write(self, key: str, how: str, which: int) -> None:
        cache = self.caches[which % len(self.caches)]
        self.source[key] += 1  # committed...
        version = self.source[key]
        if how == "delete":  # ...then invalidated
            cache.delete(key)
        elif how == "set":
            cache.set(key, version, tags=_tags(key))
        else:
            cache.invalidate_tags(f"t:{key}")
        self.done[key] = version

    @rule(how=st.sampled_from(["tag", "clear"]), which=st.integers(0, 2))
    def write_all(self, how: str, which: int) -> None:
        cache = self.caches[which % len(self.caches)]
        for key in KEYS:
            self.source[key] += 1
        if how == "tag":
            cache.invalidate_tags("all")
        else:
            cache.clear()
        self.done = dict(self.source)


class MemoryOnly(FillRaces):
    with_sqlite = False


class MemorySQLite(FillRaces):
    with_sqlite = True


def test_fill_races_memory_only(monkeypatch: pytest.MonkeyPatch) -> None:
    _count_parked_followers(monkeypatch)
    run_state_machine_as_test(MemoryOnly, settings=SETTINGS)


def test_fill_races_memory_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    _count_parked_followers(monkeypatch)
    run_state_machine_as_test(MemorySQLite, settings=SETTINGS)
