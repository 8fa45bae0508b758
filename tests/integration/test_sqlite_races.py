"""Forced interleavings over MemoryTier + SQLiteTier in one process: each pauses a thread at a chosen step.

Every pause is a ``threading.Event`` at a hooked method, never a sleep. Each test failed before the fix it
guards: fills checked against the SQLite write fence, epochs bumped after the lower-tier write as well as
before it, and the backplane's changes applied before they are marked as seen.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import stratacache as sc

if TYPE_CHECKING:
    from pathlib import Path

WAIT = 30.0


def _cache(tmp_path: Path) -> sc.Cache:
    return sc.Cache(
        sc.MemoryTier(max_entries=1000, max_bytes="8MiB"),
        sc.SQLiteTier(tmp_path / "cache.db", max_bytes=None),
        namespace="n",
        ttl=None,
    )


def _start(target: Any) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_a_backfill_that_read_before_a_write_committed_does_not_outlive_the_write(tmp_path: Path) -> None:
    c = _cache(tmp_path)
    c.set("k", 1)
    c._l1.clear()  # version 1 in SQLite only, as after an L1 eviction
    store, l1 = c._lower[0], c._l1
    real_store_set, real_l1_set = store.set_many, l1.set_many
    w_at_l2, w_go, r_at_l1, r_go = (threading.Event() for _ in range(4))
    who: dict[str, threading.Thread] = {}

    def store_set(*a: Any, **kw: Any) -> Any:
        if threading.current_thread() is who.get("writer") and not w_at_l2.is_set():
            w_at_l2.set()
            assert w_go.wait(WAIT)
        return real_store_set(*a, **kw)

    def l1_set(*a: Any, **kw: Any) -> Any:
        if threading.current_thread() is who.get("reader") and not r_at_l1.is_set():
            r_at_l1.set()
            assert r_go.wait(WAIT)
        return real_l1_set(*a, **kw)

    store.set_many, l1.set_many = store_set, l1_set
    gate = threading.Event()
    who["writer"] = _start(lambda: (gate.wait(WAIT), c.set("k", 2)))
    who["reader"] = threading.Thread(target=lambda: c.get("k"), daemon=True)
    gate.set()
    assert w_at_l2.wait(WAIT)  # writer: first epoch bump done, SQLite not written yet
    who["reader"].start()
    assert r_at_l1.wait(WAIT)  # reader: read version 1 from SQLite, about to backfill L1
    w_go.set()
    who["writer"].join(WAIT)  # set("k", 2) has returned
    r_go.set()
    who["reader"].join(WAIT)
    assert c.get("k") == 2


def test_a_poll_in_progress_holds_back_other_readers_until_applied(tmp_path: Path) -> None:
    writer, other = _cache(tmp_path), _cache(tmp_path)
    writer.set("k", 1)
    assert other.get("k") == 1
    assert other.get("k") == 1  # now in other's L1
    real_apply = other._apply
    t1_applying, t1_go = threading.Event(), threading.Event()
    who: dict[str, Any] = {}

    def apply(changes: Any) -> None:
        if threading.current_thread() is who.get("t1") and not t1_applying.is_set():
            t1_applying.set()
            assert t1_go.wait(WAIT)  # T1 read the log and is preempted before dropping "k" from L1
        real_apply(changes)

    other._apply = apply  # type: ignore[method-assign]
    writer.set("k", 2)  # returned: every read that starts now must see 2
    gate = threading.Event()
    who["t1"] = _start(lambda: (gate.wait(WAIT), other.get("unrelated")))
    gate.set()
    assert t1_applying.wait(WAIT)
    t2 = _start(lambda: who.setdefault("t2", other.get("k")))
    t2.join(0.2)  # give T2 the chance to (wrongly) answer from L1 while T1 is paused
    t1_go.set()
    who["t1"].join(WAIT)
    t2.join(WAIT)
    assert who["t2"] == 2


def test_a_load_racing_a_set_never_overwrites_the_set_in_sqlite(tmp_path: Path) -> None:
    c = _cache(tmp_path)
    store = c._lower[0]
    real_fill = store.fill_many
    at_fill, writer_done = threading.Event(), threading.Event()
    who: dict[str, threading.Thread] = {}

    def fill(*a: Any, **kw: Any) -> Any:
        if threading.current_thread() is who.get("leader") and not at_fill.is_set():
            at_fill.set()
            assert writer_done.wait(WAIT)
        return real_fill(*a, **kw)

    store.fill_many = fill  # type: ignore[method-assign]
    gate = threading.Event()
    who["leader"] = _start(lambda: (gate.wait(WAIT), c.get_or_load("k", lambda: "old")))
    gate.set()
    assert at_fill.wait(WAIT)  # the leader loaded "old" and is about to fill SQLite
    c.set("k", "new")
    writer_done.set()
    who["leader"].join(WAIT)
    assert c.get("k") == "new"
    assert _cache(tmp_path).get("k") == "new"  # SQLite, as every other process sees it


def test_a_load_racing_a_delete_is_not_stored(tmp_path: Path) -> None:
    c = _cache(tmp_path)
    c.set("k", "old")
    c._l1.clear()
    store = c._lower[0]
    c.delete("k")

    def loader() -> str:
        _cache(tmp_path).delete("k")  # another cache (process) deletes while this one loads
        return "loaded-before-delete"

    assert c.get_or_load("k", loader) == "loaded-before-delete"
    assert store.get_many([c._prefix + "k"]) == [None]
    assert c.get("k", "miss") == "miss"


def test_a_commit_by_another_store_right_after_this_ones_own_is_still_applied(tmp_path: Path) -> None:
    """A store skips reading back its own log rows after a commit, and marks the state seen if nothing followed.

    Here another store commits between this store's COMMIT and that bookkeeping: the state must not be marked
    seen, and the next read must drop the stale L1 copy.
    """
    c, other = _cache(tmp_path), _cache(tmp_path)
    c.set("k", 1)
    assert c.get("k") == 1  # in c's L1
    store = c._lower[0]
    real_skip_own = store._skip_own

    def skip_own(top: int, last: int) -> None:
        other.set("k", 2)  # commits after c's commit, before c looks at the state
        real_skip_own(top, last)

    store._skip_own = skip_own  # type: ignore[method-assign]
    c.set("unrelated", 0)
    store._skip_own = real_skip_own  # type: ignore[method-assign]
    assert c.get("k") == 2


def test_a_stores_own_commit_is_not_read_back_from_the_log(tmp_path: Path) -> None:
    c, other = _cache(tmp_path), _cache(tmp_path)
    store = c._lower[0]
    statements: list[str] = []
    store._connect().set_trace_callback(statements.append)
    c.set_many({f"k{i}": i for i in range(2000)})
    statements.clear()
    assert c.get("k7") == 7
    assert not [s for s in statements if "FROM sc_log WHERE seq >" in s]  # the poll returned at the map check
    other.set("k7", -7)
    assert c.get("k7") == -7  # another store's commit is read and applied
    assert [s for s in statements if "FROM sc_log WHERE seq >" in s]


def test_a_stores_own_commit_does_not_skip_another_stores_rows_it_has_not_polled(tmp_path: Path) -> None:
    c, other = _cache(tmp_path), _cache(tmp_path)
    c.set("k", 1)
    assert c.get("k") == 1  # in c's L1
    other.set("k", 2)  # logged before c's next commit, which comes before c's next poll
    c._lower[0].delete_many([c._prefix + "unrelated"])  # a store-level write: the engine does not poll first
    assert c.get("k") == 2
