"""The embedded SQLite tier against a real file: corruption, schema tags, byte bounds, expiry, WAL, batching,
bad paths and a database that goes bad under an open cache.

Rows are tampered with over a connection of the test's own (``sqlite3``), the way a crash, a disk fault or a
foreign writer would leave them. Reads must degrade to counted misses, never raise.
"""

from __future__ import annotations

import itertools
import sqlite3
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

import stratacache as sc
from stratacache.core.envelope import decode_envelope, encode_envelope
from stratacache.testing import FakeClock
from stratacache.tiers.sqlite import SQLiteStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

NS = "tier"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cache.db"


@pytest.fixture
def open_cache(db: Path, clock: FakeClock) -> Iterator[Callable[..., sc.Cache]]:
    """``open_cache(**kwargs)``: an SQLite-only cache on ``db`` (no L1: every read reaches the file)."""
    caches: list[sc.Cache] = []

    def make(*, max_bytes: int | None = None, **kwargs: Any) -> sc.Cache:
        kwargs.setdefault("namespace", NS)
        kwargs.setdefault("ttl", None)
        cache = sc.Cache(sc.SQLiteTier(db, max_bytes=max_bytes), clock=clock, **kwargs)
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        cache.close()


@pytest.fixture
def cache(open_cache: Callable[..., sc.Cache]) -> sc.Cache:
    return open_cache()


def store_of(cache: sc.Cache) -> SQLiteStore:
    (store,) = [s for s in cache._lower if isinstance(s, SQLiteStore)]
    return store


class Raw:
    """The test's own connection to the cache file."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)

    def env(self, key: str) -> bytes:
        row = self.conn.execute("SELECT env FROM sc_entries WHERE key = ?", (f"{NS}:{key}",)).fetchone()
        assert row is not None, f"{key!r} is not stored"
        return bytes(row[0])

    def put_env(self, key: str, blob: bytes) -> None:
        n = self.conn.execute("UPDATE sc_entries SET env = ? WHERE key = ?", (blob, f"{NS}:{key}")).rowcount
        assert n == 1

    def has(self, key: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sc_entries WHERE key = ?", (f"{NS}:{key}",)).fetchone() is not None

    def rows(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM sc_entries").fetchone()[0])

    def totals(self) -> tuple[int, int, int, int]:
        """``(rows, summed sizes, meta entries, meta bytes)``."""
        rows, nbytes = self.conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM sc_entries").fetchone()
        meta = dict(self.conn.execute("SELECT k, v FROM sc_meta").fetchall())
        return int(rows), int(nbytes), int(meta["entries"]), int(meta["bytes"])

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def raw(cache: sc.Cache, db: Path) -> Iterator[Raw]:
    r = Raw(db)
    yield r
    r.close()


# ---------------------------------------------------------------------------------------------- corrupt rows


def _replace_envelope(blob: bytes, **changes: Any) -> bytes:
    return encode_envelope(msgspec.structs.replace(decode_envelope(blob), **changes))


STORE_LEVEL_GARBAGE: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda _b: b"",
    "one zero byte": lambda _b: b"\x00",
    "format byte only": lambda _b: b"\x01",
    "unknown format": lambda b: b"\x7f" + b[1:],
    "truncated to half": lambda b: b[: len(b) // 2],
    "truncated by one": lambda b: b[:-1],
    "random tail": lambda b: b[:3] + b"\xc1\xff\xfe" * 4,
    "bad utf-8 in a tag": lambda b: _replace_envelope(b, tags=("TAG",)).replace(b"TAG", b"\xff\xfe\xfd"),
}

ENGINE_LEVEL_GARBAGE: dict[str, Callable[[bytes], bytes]] = {
    "undecodable payload": lambda b: _replace_envelope(b, value=b"\xc1"),
    "payload with bad utf-8": lambda b: _replace_envelope(b, value=b"\xa3\x00\x00\x80"),
    "gens and tags misaligned": lambda b: _replace_envelope(b, gens=(0, 0, 0)),
    "truncated payload": lambda b: _replace_envelope(b, value=decode_envelope(b).value[:-3]),
}


@pytest.mark.parametrize("mangle", STORE_LEVEL_GARBAGE.values(), ids=STORE_LEVEL_GARBAGE.keys())
def test_corrupt_rows_are_counted_misses_and_dropped(
    cache: sc.Cache, raw: Raw, mangle: Callable[[bytes], bytes]
) -> None:
    cache.set("k", {"payload": list(range(20))}, tags=["t"])
    cache.set("good", "fine")
    raw.put_env("k", mangle(raw.env("k")))
    errors = cache.stats()["sqlite"].errors

    assert cache.get("k", "miss") == "miss"
    assert cache.stats()["sqlite"].errors == errors + 1
    assert not raw.has("k")  # the corrupt row was deleted
    assert raw.totals()[:2] == raw.totals()[2:]  # and the totals followed
    assert cache.get("good") == "fine"
    cache.set("k", "again")
    assert cache.get("k") == "again"


@pytest.mark.parametrize("mangle", STORE_LEVEL_GARBAGE.values(), ids=STORE_LEVEL_GARBAGE.keys())
def test_corrupt_rows_are_misses_for_get_many_and_get_or_load(
    cache: sc.Cache, raw: Raw, mangle: Callable[[bytes], bytes]
) -> None:
    cache.set_many({"a": 1, "b": 2, "c": 3})
    raw.put_env("a", mangle(raw.env("a")))
    raw.put_env("b", mangle(raw.env("b")))
    assert cache.get_many(["a", "b", "c"]) == {"c": 3}
    assert cache.stats()["sqlite"].errors >= 2
    raw.put_env("c", mangle(raw.env("c")))
    assert cache.get_or_load("c", lambda: "loaded") == "loaded"
    assert cache.get("c") == "loaded"


@pytest.mark.parametrize("mangle", ENGINE_LEVEL_GARBAGE.values(), ids=ENGINE_LEVEL_GARBAGE.keys())
def test_well_formed_rows_with_bad_contents_are_counted_misses(
    cache: sc.Cache, raw: Raw, mangle: Callable[[bytes], bytes]
) -> None:
    cache.set("k", {"payload": "x" * 40}, tags=["t"])
    raw.put_env("k", mangle(raw.env("k")))
    errors = cache.stats()["sqlite"].errors
    assert cache.get("k", "miss") == "miss"
    assert cache.get_many(["k"]) == {}
    assert cache.stats()["sqlite"].errors == errors + 2
    assert cache.get_or_load("k", lambda: "loaded", tags=["t"]) == "loaded"
    assert cache.get("k") == "loaded"


@pytest.mark.asyncio
async def test_corrupt_rows_are_misses_through_the_async_facade(db: Path, clock: FakeClock) -> None:
    async with sc.AsyncCache(sc.SQLiteTier(db, max_bytes=None), namespace=NS, clock=clock) as acache:
        await acache.set("k", "v")
        raw = Raw(db)
        try:
            raw.put_env("k", raw.env("k")[:5])
        finally:
            raw.close()
        assert await acache.get("k", "miss") == "miss"
        assert acache.stats()["sqlite"].errors == 1


# ---------------------------------------------------------------------------------------------- schema and codec tags


def test_entries_of_another_schema_are_misses(open_cache: Callable[..., sc.Cache]) -> None:
    v0 = open_cache(schema=0)
    v1 = open_cache(schema=1)
    v0.set("k", {"shape": "old"})
    assert v1.get("k", "miss") == "miss"
    assert v1.stats()["sqlite"].misses == 1
    assert v1.get_or_load("k", lambda: {"shape": "new"}) == {"shape": "new"}
    assert v0.get("k", "miss") == "miss"  # and the other way round
    assert v1.get("k") == {"shape": "new"}


def test_entries_of_another_codec_are_misses(open_cache: Callable[..., sc.Cache]) -> None:
    mp = open_cache(codec="msgpack")
    js = open_cache(codec="json")
    mp.set("k", [1, 2])
    js.set("j", [3, 4])
    assert js.get("k", "miss") == "miss"
    assert mp.get("j", "miss") == "miss"
    assert mp.get("k") == [1, 2]
    assert js.get("j") == [3, 4]


def test_namespaces_sharing_a_file_never_see_each_other(open_cache: Callable[..., sc.Cache]) -> None:
    a = open_cache(namespace="a")
    ab = open_cache(namespace="a:b")
    a.set("b:c", "from a")
    ab.set("c", "from a:b")
    assert a.get("b:c") == "from a"
    assert ab.get("c") == "from a:b"
    ab.clear()
    assert ab.get("c", "miss") == "miss"
    assert a.get("b:c") == "from a"


# ---------------------------------------------------------------------------------------------- byte bound


def test_byte_bound_keeps_accounted_bytes_under_max_bytes(
    open_cache: Callable[..., sc.Cache], db: Path, clock: FakeClock
) -> None:
    limit = 8192
    cache = open_cache(max_bytes=limit)
    raw = Raw(db)
    try:
        cache.set("hot", "keep me")
        for i in range(150):
            clock.advance(61)  # distinct access times, past the granularity reads record them at (30 s)
            assert cache.get("hot") == "keep me", f"the most recently read key was evicted by write {i - 1}"
            cache.set(f"k{i}", "x" * (50 + (i * 37) % 400), tags=["t"] if i % 3 else ())
            rows, nbytes, meta_entries, meta_bytes = raw.totals()
            assert (meta_entries, meta_bytes) == (rows, nbytes)
            assert nbytes <= limit
            assert cache.get(f"k{i}") is not None, f"the key just written was evicted at write {i}"
        stats = cache.stats()["sqlite"]
        assert stats.evictions > 0
        assert stats.bytes <= limit
        assert (stats.entries, stats.bytes) == raw.totals()[:2]
    finally:
        raw.close()


def test_a_value_that_cannot_fit_is_refused_and_changes_nothing(open_cache: Callable[..., sc.Cache]) -> None:
    cache = open_cache(max_bytes=4096)
    cache.set("k", "before")
    with pytest.raises(sc.ValueTooLargeError):
        cache.set("k", "x" * 5000)
    with pytest.raises(sc.ValueTooLargeError):
        cache.set_many({"k": "small", "big": "x" * 5000})
    assert cache.get("k") == "before"
    assert cache.get("big", "miss") == "miss"


# ---------------------------------------------------------------------------------------------- expiry


def test_expired_rows_are_reclaimed_incrementally_by_later_writes(cache: sc.Cache, raw: Raw, clock: FakeClock) -> None:
    cache.set_many({f"short{i}": i for i in range(100)}, ttl=10)
    cache.set_many({f"long{i}": i for i in range(10)})  # no expiry
    clock.advance(11)
    assert cache.get_many([f"short{i}" for i in range(100)]) == {}
    assert raw.rows() == 110  # reads never delete expired rows
    history = [raw.rows()]
    for i in range(20):
        cache.set(f"new{i}", i)
        history.append(raw.rows() - (i + 1))  # rows other than the new ones
    assert history[1] < history[0], "the first later write reclaimed nothing"
    assert history[-1] == 10, "expired rows were never all reclaimed"
    assert all(a >= b for a, b in itertools.pairwise(history))
    sqlite = cache.stats()["sqlite"]
    assert (sqlite.expirations, sqlite.evictions) == (100, 0)
    assert cache.get_many([f"long{i}" for i in range(10)]) == {f"long{i}": i for i in range(10)}
    assert raw.totals()[:2] == raw.totals()[2:]


# ---------------------------------------------------------------------------------------------- WAL and batching


def test_wal_mode_is_on(cache: sc.Cache, db: Path) -> None:
    cache.set("k", "v")
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        conn.close()
    assert db.with_name(db.name + "-wal").exists()


def traced(cache: sc.Cache) -> list[str]:
    """Every SQL statement the cache runs on this thread's connection from now on."""
    statements: list[str] = []
    store_of(cache)._connect().set_trace_callback(statements.append)
    return statements


def test_set_many_is_one_transaction(cache: sc.Cache) -> None:
    statements = traced(cache)
    cache.set_many({f"k{i}": i for i in range(100)}, tags=["t"])
    assert sum(s.startswith("BEGIN") for s in statements) == 1
    assert sum(s == "COMMIT" for s in statements) == 1
    statements.clear()
    for i in range(5):  # the same counter sees one transaction per single set
        cache.set(f"s{i}", i)
    assert sum(s.startswith("BEGIN") for s in statements) == 5


def test_get_many_is_one_select(cache: sc.Cache) -> None:
    cache.set_many({f"k{i}": i for i in range(100)})
    statements = traced(cache)
    got = cache.get_many([f"k{i}" for i in range(100)] + ["absent"])
    assert got == {f"k{i}": i for i in range(100)}
    entry_reads = [s for s in statements if "FROM sc_entries" in s]
    assert len(entry_reads) == 1, entry_reads
    assert not any(s.startswith("BEGIN") for s in statements)  # a read takes no write lock


def test_a_get_leaves_no_read_transaction_open(cache: sc.Cache, raw: Raw) -> None:
    """The one-key read reuses the thread's cursor: its statement must be finished when ``get`` returns.

    A statement left stepping would pin this connection's snapshot (later reads on it would miss commits by
    other connections) and keep a checkpoint from resetting the WAL.
    """
    cache.set_many({"a": 1, "b": 2})
    assert cache.get("a") == 1
    raw.conn.execute(
        "UPDATE sc_entries SET env = (SELECT env FROM sc_entries WHERE key = ?) WHERE key = ?",
        (
            f"{NS}:b",
            f"{NS}:a",
        ),
    )
    busy, _log, _done = raw.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0  # no reader holds a snapshot
    assert cache.get("a") == 2  # the other connection's commit is seen (no L1: straight from the file)
    assert cache.get("missing") is None
    assert raw.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0


def test_delete_many_is_one_transaction(cache: sc.Cache) -> None:
    cache.set_many({f"k{i}": i for i in range(50)})
    statements = traced(cache)
    assert cache.delete_many([f"k{i}" for i in range(50)] + ["absent"]) == 50
    assert sum(s.startswith("BEGIN") for s in statements) == 1
    assert cache.get_many([f"k{i}" for i in range(50)]) == {}


# ---------------------------------------------------------------------------------------------- bad paths


def test_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(sc.ConfigError):
        sc.SQLiteTier(tmp_path)


@pytest.mark.parametrize(
    "make_path",
    [
        pytest.param(lambda tmp: tmp / "a-file" / "cache.db", id="parent is a regular file"),
        pytest.param(lambda tmp: tmp / "a-file" / "deeper" / "cache.db", id="ancestor is a regular file"),
        pytest.param(lambda _tmp: "/proc/stratacache-test.db", id="unwritable filesystem"),
        pytest.param(lambda _tmp: "/proc/stratacache/test/cache.db", id="uncreatable directory"),
    ],
)
def test_an_unwritable_path_fails_at_construction(tmp_path: Path, make_path: Callable[[Path], Any]) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises((sc.TierError, sc.ConfigError)):
        sc.Cache(sc.SQLiteTier(make_path(tmp_path)))


def test_a_file_that_is_not_a_database_fails_at_construction(db: Path) -> None:
    db.write_bytes(b"\xde\xad\xbe\xef" * 2048)
    with pytest.raises(sc.TierError):
        sc.Cache(sc.SQLiteTier(db))
    assert db.read_bytes() == b"\xde\xad\xbe\xef" * 2048  # and it was not touched


def test_a_foreign_database_with_clashing_tables_fails_at_construction(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE sc_entries(id INTEGER PRIMARY KEY, body TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(sc.TierError):
        sc.Cache(sc.SQLiteTier(db))


# ---------------------------------------------------------------------------------------------- a file going bad


def _garble(path: Path) -> None:
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if f.exists():
            size = f.stat().st_size
            with f.open("r+b") as fh:  # in place: the open cache keeps its descriptors and its -shm map
                fh.write((b"\xde\xad\xbe\xef" * (size // 4 + 1))[:size])


def test_reads_on_a_corrupted_file_degrade_to_misses(open_cache: Callable[..., sc.Cache], db: Path) -> None:
    cache = open_cache(max_bytes=None)
    cache.set_many({f"k{i}": i for i in range(50)}, tags=["t"])
    assert cache.get("k1") == 1
    _garble(db)

    assert cache.get("k1", "miss") == "miss"
    assert cache.get_many(["k2", "k3"]) == {}
    assert cache.get_or_load("k4", lambda: "from the loader") == "from the loader"
    stats = cache.stats()  # does not raise either
    assert stats["sqlite"].errors > 0
    with pytest.raises(sc.TierError):  # a write is never silently lost
        cache.set("k5", 5)
    with pytest.raises(sc.TierError):
        cache.invalidate_tags("t")


def test_an_l1_over_a_corrupted_file_stops_serving_what_it_cannot_verify(db: Path, clock: FakeClock) -> None:
    cache = sc.Cache(sc.MemoryTier(max_entries=100), sc.SQLiteTier(db, max_bytes=None), namespace=NS, clock=clock)
    try:
        cache.set("k", "v")
        assert cache.get("k") == "v"
        _garble(db)
        # the backplane is lost with the file: the L1 may no longer know about other processes' writes
        assert cache.get("k", "miss") == "miss"
        assert cache.stats()["sqlite"].errors > 0
    finally:
        cache.close()


def test_a_new_cache_on_a_corrupted_file_fails_at_construction(open_cache: Callable[..., sc.Cache], db: Path) -> None:
    cache = open_cache()
    cache.set("k", "v")
    cache.close()
    _garble(db)
    with pytest.raises(sc.TierError):
        sc.Cache(sc.SQLiteTier(db))
