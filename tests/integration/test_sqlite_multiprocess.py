"""Several real OS processes sharing one SQLite file, each with its own in-process L1 on top.

The SQLite backplane (the ``sc_log`` table, read when the database changed) must carry every write, delete,
tag invalidation and clear of one process to the L1 of the others: after another process's change has
returned, a read here never serves the old value from L1. Concurrent writers must leave a sound file whose
trigger-maintained totals match its rows.

Processes are started with the ``spawn`` context and driven over queues (a command, then its result); there
are no sleeps, and every wait is bounded.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import sqlite3
from typing import TYPE_CHECKING, Any

import pytest

import stratacache as sc

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.synchronize import Barrier
    from pathlib import Path

pytestmark = pytest.mark.slow

TIMEOUT = 60.0
NAMESPACE = "mp"


def _tiers(path: str) -> tuple[sc.MemoryTier, sc.SQLiteTier]:
    return sc.MemoryTier(max_entries=10_000, max_bytes="64MiB"), sc.SQLiteTier(path, max_bytes=None)


def _tier_counts(cache: sc.Cache) -> dict[str, tuple[int, ...]]:
    return {
        t.name: (t.hits, t.misses, t.sets, t.deletes, t.evictions, t.errors, t.entries, t.bytes)
        for t in cache.stats().tiers
    }


def _hammer(cache: sc.Cache, me: str, rounds: int, barrier: Barrier) -> dict[str, Any]:
    """Write own and shared keys as fast as possible, mixed with deletes, reads and invalidations."""
    barrier.wait(TIMEOUT)  # both writers start together
    last_shared: dict[str, Any] = {}
    for i in range(rounds):
        cache.set(f"{me}:{i % 50}", [me, i], tags=[f"{me}-tag"])
        shared = f"shared:{i % 10}"
        cache.set(shared, [me, i], tags=["shared-tag"])
        last_shared[shared] = [me, i]
        cache.set_many({f"{me}:many:{i % 7}": i, f"both:many:{i % 7}": [me, i]})
        if i % 11 == 0:
            cache.delete(f"both:many:{(i + 3) % 7}")
        if i % 17 == 0:
            cache.invalidate_tags("nobody-reads-this-tag")
        cache.get(f"shared:{(i + 5) % 10}")
        cache.get_many([f"{me}:{(i + 1) % 50}", f"both:many:{i % 7}"])
    return {"last_shared": last_shared}


def _worker(path: str, namespace: str, commands: mp.Queue[Any], results: mp.Queue[Any], barrier: Barrier) -> None:
    """A process holding one Cache (own L1 over the shared file), executing commands until ``None``."""
    cache = sc.Cache(*_tiers(path), namespace=namespace, ttl=None)
    try:
        while True:
            command = commands.get(timeout=TIMEOUT)
            if command is None:
                return
            op, args, kwargs = command
            try:
                if op == "counts":
                    out: Any = _tier_counts(cache)
                elif op == "hammer":
                    out = _hammer(cache, *args, barrier=barrier)
                else:
                    out = getattr(cache, op)(*args, **kwargs)
            except Exception as exc:  # reported to the parent, which fails the test
                results.put(("error", f"{op}: {exc!r}"))
            else:
                results.put(("ok", out))
    finally:
        cache.close()


class Remote:
    """The parent's handle on a worker process: ``remote.call("get", "k")`` runs ``cache.get("k")`` there."""

    def __init__(self, ctx: Any, path: Path, barrier: Barrier, namespace: str = NAMESPACE) -> None:
        self.barrier = barrier  # keep it alive: the started Process drops its args, and the semaphore with them
        self.commands: mp.Queue[Any] = ctx.Queue()
        self.results: mp.Queue[Any] = ctx.Queue()
        self.process = ctx.Process(
            target=_worker, args=(str(path), namespace, self.commands, self.results, barrier), daemon=True
        )
        self.process.start()

    def send(self, op: str, *args: Any, **kwargs: Any) -> None:
        self.commands.put((op, args, kwargs))

    def result(self) -> Any:
        for _ in range(int(TIMEOUT)):  # bounded; stops early if the worker died
            try:
                status, out = self.results.get(timeout=1.0)
                break
            except queue.Empty:
                if not self.process.is_alive():
                    pytest.fail(f"worker {self.process.pid} died with exit code {self.process.exitcode}")
        else:
            pytest.fail(f"worker {self.process.pid} did not answer within {TIMEOUT} s")
        if status != "ok":
            pytest.fail(f"worker {self.process.pid} failed: {out}")
        return out

    def call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        self.send(op, *args, **kwargs)
        return self.result()

    def stop(self) -> None:
        if self.process.is_alive():
            self.commands.put(None)
            self.process.join(timeout=TIMEOUT)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)
        assert self.process.exitcode == 0, f"worker exited with {self.process.exitcode}"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "shared.db"


@pytest.fixture
def spawn(db: Path) -> Iterator[Any]:
    """``spawn(n)`` starts ``n`` workers on ``db``, sharing one barrier of ``n`` parties."""
    ctx = mp.get_context("spawn")
    started: list[Remote] = []

    def start(n: int, namespace: str = NAMESPACE) -> list[Remote]:
        barrier = ctx.Barrier(n)
        remotes = [Remote(ctx, db, barrier, namespace) for _ in range(n)]
        started.extend(remotes)
        return remotes

    yield start
    errors = []
    for remote in started:
        try:
            remote.stop()
        except AssertionError as exc:
            errors.append(str(exc))
    assert not errors, errors


@pytest.fixture
def local(db: Path) -> Iterator[sc.Cache]:
    """This process's cache: its own L1 over the shared file."""
    cache = sc.Cache(*_tiers(str(db)), namespace=NAMESPACE, ttl=None)
    yield cache
    cache.close()


def l1_hits(cache: sc.Cache) -> int:
    return cache.stats()["memory"].hits


def served_from_l1(cache: sc.Cache, key: str, expected: Any) -> None:
    """Read ``key`` and check it came from this process's L1 (so that a later read tests the backplane)."""
    before = l1_hits(cache)
    assert cache.get(key) == expected
    assert l1_hits(cache) == before + 1, f"{key!r} was not served from L1"


def sqlite_facts(path: Path) -> tuple[str, int, int, int, int]:
    conn = sqlite3.connect(path)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        rows, nbytes = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM sc_entries").fetchone()
        meta = dict(conn.execute("SELECT k, v FROM sc_meta").fetchall())
    finally:
        conn.close()
    return check, rows, nbytes, meta["entries"], meta["bytes"]


# ---------------------------------------------------------------------------------------------- visibility


def test_values_written_in_one_process_are_read_in_another(spawn: Any, local: sc.Cache) -> None:
    (b,) = spawn(1)
    local.set_many({"a": {"n": 1}, "b": [1, 2, 3], "none": None}, tags=["t"])
    local.set(("tuple", 1), "tuple-key")
    assert b.call("get_many", ["a", "b", "none", "absent"]) == {"a": {"n": 1}, "b": [1, 2, 3], "none": None}
    assert b.call("get", ("tuple", 1)) == "tuple-key"
    assert b.call("get", "none", "miss") is None
    assert b.call("get_or_load", "a", int) == {"n": 1}  # a hit: the loader (int) would return 0
    b_counts = b.call("counts")
    assert b_counts["sqlite"][0] >= 4  # hits in the shared tier


def test_tag_invalidated_in_another_process_is_a_miss_in_this_l1(spawn: Any, local: sc.Cache) -> None:
    (b,) = spawn(1)
    local.set("tagged", "old", tags=["t", "u"])
    local.set("other-tag", "keep", tags=["u"])
    local.set("untagged", "keep")
    served_from_l1(local, "tagged", "old")
    assert b.call("get", "tagged") == "old"
    b.call("invalidate_tags", "t")
    assert local.get("tagged", "miss") == "miss"
    assert local.get("other-tag") == "keep"
    assert local.get("untagged") == "keep"
    assert local.get_or_load("tagged", lambda: "new", tags=["t"]) == "new"
    assert b.call("get", "tagged") == "new"  # B's own L1 copy was invalidated by its own bump


def test_delete_in_another_process_is_a_miss_in_this_l1(spawn: Any, local: sc.Cache) -> None:
    (b,) = spawn(1)
    local.set_many({"k": "old", "k2": "old2"})
    served_from_l1(local, "k", "old")
    served_from_l1(local, "k2", "old2")
    assert b.call("delete", "k") is True
    assert local.get("k", "miss") == "miss"
    assert b.call("delete_many", ["k2", "absent"]) == 1
    assert local.get_many(["k", "k2"]) == {}


def test_set_in_another_process_replaces_this_l1_copy(spawn: Any, local: sc.Cache) -> None:
    (b,) = spawn(1)
    local.set("k", "v1")
    served_from_l1(local, "k", "v1")
    b.call("set", "k", "v2")
    assert local.get("k") == "v2"
    b.call("set_many", {"k": "v3", "j": "j1"})
    assert local.get_many(["k", "j"]) == {"k": "v3", "j": "j1"}
    # and back: B had v3 in its L1 from its own write
    local.set("k", "v4")
    assert b.call("get", "k") == "v4"


def test_ping_pong_never_reads_an_old_value(spawn: Any, local: sc.Cache) -> None:
    (b,) = spawn(1)
    for i in range(30):
        b.call("set", "k", ["b", i], tags=["t"])
        assert local.get("k") == ["b", i]
        assert local.get("k") == ["b", i]  # now from L1
        local.set("k", ["a", i], tags=["t"])
        assert b.call("get", "k") == ["a", i]
        if i % 5 == 0:
            b.call("invalidate_tags", "t")
            assert local.get("k", "miss") == "miss"


def test_clear_in_another_process_empties_this_namespace_only(spawn: Any, local: sc.Cache, db: Path) -> None:
    (b,) = spawn(1)
    other = sc.Cache(*_tiers(str(db)), namespace="other", ttl=None)
    try:
        local.set_many({"a": 1, "b": 2})
        other.set("a", "other")
        served_from_l1(local, "a", 1)
        served_from_l1(other, "a", "other")
        b.call("clear")
        assert local.get_many(["a", "b"]) == {}
        assert other.get("a") == "other"
        local.set("a", 3)
        assert b.call("get", "a") == 3
    finally:
        other.close()


def test_invalidation_reaches_every_other_process(spawn: Any, local: sc.Cache) -> None:
    b, c = spawn(2)
    local.set("k", "old", tags=["t"])
    assert b.call("get", "k") == "old"
    assert c.call("get", "k") == "old"
    assert b.call("get", "k") == "old"  # now in B's L1
    assert c.call("get", "k") == "old"  # and in C's
    b_l1_hits = b.call("counts")["memory"][0]
    assert b_l1_hits >= 1
    local.invalidate_tags("t")
    assert b.call("get", "k", "miss") == "miss"
    assert c.call("get", "k", "miss") == "miss"
    c.call("set", "k", "new", tags=["t"])
    assert b.call("get", "k") == "new"
    assert local.get("k") == "new"


# ---------------------------------------------------------------------------------------------- concurrent writers


def test_concurrent_writers_keep_the_file_sound_and_the_totals_exact(spawn: Any, local: sc.Cache, db: Path) -> None:
    rounds = 400
    b, c = spawn(2)
    b.send("hammer", "b", rounds)
    c.send("hammer", "c", rounds)
    last_b = b.result()["last_shared"]
    last_c = c.result()["last_shared"]

    check, rows, nbytes, meta_entries, meta_bytes = sqlite_facts(db)
    assert check == "ok"
    assert (meta_entries, meta_bytes) == (rows, nbytes)
    for remote in (b, c):
        counts = remote.call("counts")["sqlite"]
        assert counts[5] == 0  # no tier errors in either writer
        assert (counts[6], counts[7]) == (rows, nbytes)
    assert local.stats()["sqlite"].entries == rows

    # every writer's own keys hold its last value, seen the same from every process
    for me, remote in (("b", b), ("c", c)):
        own = [f"{me}:{j}" for j in range(50)]
        expected = {f"{me}:{(rounds - 50 + j) % 50}": [me, rounds - 50 + j] for j in range(50)}
        assert local.get_many(own) == expected
        assert remote.call("get_many", own) == expected
    # shared keys: one of the two last writes, and all three processes agree (L1s included)
    shared = [f"shared:{j}" for j in range(10)]
    here = local.get_many(shared)
    assert set(here) == set(shared)
    for key, value in here.items():
        assert value in (last_b[key], last_c[key])
    assert b.call("get_many", shared) == here
    assert c.call("get_many", shared) == here
    both = [f"both:many:{j}" for j in range(7)]
    assert b.call("get_many", both) == local.get_many(both) == c.call("get_many", both)


@pytest.mark.slow
def test_invalidation_by_another_process_during_a_load_wins(tmp_path: Path) -> None:
    """The stale-fill race across processes: a delete committed while a loader ran voids that loader's fill."""
    ctx = mp.get_context("spawn")
    db = tmp_path / "shared.db"
    b = Remote(ctx, db, ctx.Barrier(1), namespace="mp")
    try:
        a = sc.Cache(sc.MemoryTier(max_entries=100), sc.SQLiteTier(db, max_bytes=None), namespace="mp", ttl=None)
        row = {"value": "old"}

        def loader() -> str:
            seen = row["value"]  # the loader reads the row...
            row["value"] = "new"  # ...another process commits an update...
            assert b.call("delete", "k") is False  # ...and invalidates the key, as prescribed
            return seen

        assert a.get_or_load("k", loader) == "old"  # the caller gets what it loaded...
        assert b.call("get", "k", "miss") == "miss"  # ...but nobody is served it afterwards
        assert a.get("k", "miss") == "miss"
        assert a.get_or_load("k", lambda: row["value"]) == "new"
        assert b.call("get", "k", "miss") == "new"
        a.close()
    finally:
        b.stop()


_CHECK_DMS = """
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
# struct flock: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid (Linux x86-64 / aarch64)
query = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 128, 1, 0)  # SQLite's "DMS" byte of the -shm file
l_type = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, query))[0]
print("held" if l_type != fcntl.F_UNLCK else "free")
"""


def test_opening_more_stores_never_drops_sqlites_locks_on_the_shm_file(tmp_path: Path) -> None:
    """Regression: mapping -shm with a descriptor that is then closed dropped every POSIX lock this process held
    on it, SQLite's own included, so another process could rebuild the WAL index under live connections (SIGBUS).
    """
    import subprocess
    import sys

    from stratacache.tiers.sqlite import SQLiteStore

    path = tmp_path / "c.db"
    first = SQLiteStore(path, max_bytes=None, now=lambda: 0.0)
    try:
        second = SQLiteStore(path, max_bytes=None, now=lambda: 0.0)  # mapped -shm again in this process
        second.close()  # and closed a store: neither may release the first store's locks
        out = subprocess.run(
            [sys.executable, "-c", _CHECK_DMS, f"{path}-shm"], capture_output=True, text=True, check=True, timeout=60
        )
        assert out.stdout.strip() == "held"
    finally:
        first.close()
