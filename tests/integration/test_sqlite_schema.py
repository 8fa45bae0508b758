"""The SQLite tier's layout version: a file written by an older stratacache is upgraded in place (its tables are
recreated: it is a cache), one written by a newer one is refused, and the upgraded file works as a new one."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

import stratacache as sc
from stratacache.testing import FakeClock
from stratacache.tiers.sqlite import SCHEMA_VERSION, SQLiteStore

if TYPE_CHECKING:
    from pathlib import Path

# The layout of version 1, as stratacache wrote it before the upgrade.
V1 = """
CREATE TABLE sc_entries(key TEXT PRIMARY KEY, env BLOB NOT NULL, gc_at REAL, size INTEGER NOT NULL,
                        atime REAL NOT NULL);
CREATE INDEX sc_entries_gc ON sc_entries(gc_at) WHERE gc_at IS NOT NULL;
CREATE INDEX sc_entries_atime ON sc_entries(atime);
CREATE TABLE sc_meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO sc_meta(k, v) VALUES ('bytes', 0), ('entries', 0), ('schema', 1);
CREATE TABLE sc_gens(name TEXT PRIMARY KEY, gen INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE sc_log(seq INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, kind INTEGER NOT NULL,
                    name TEXT NOT NULL);
CREATE TRIGGER sc_entries_ins AFTER INSERT ON sc_entries BEGIN
    UPDATE sc_meta SET v = v + NEW.size WHERE k = 'bytes';
    UPDATE sc_meta SET v = v + 1 WHERE k = 'entries';
END;
CREATE TRIGGER sc_entries_del AFTER DELETE ON sc_entries BEGIN
    UPDATE sc_meta SET v = v - OLD.size WHERE k = 'bytes';
    UPDATE sc_meta SET v = v - 1 WHERE k = 'entries';
END;
CREATE TRIGGER sc_entries_upd AFTER UPDATE OF size ON sc_entries BEGIN
    UPDATE sc_meta SET v = v + NEW.size - OLD.size WHERE k = 'bytes';
END;
"""


def _v1_file(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(V1)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO sc_entries(key, env, gc_at, size, atime) VALUES (?, ?, NULL, 3, 0)",
        [(f"old:{i}", b"\x01\x90\x90") for i in range(20)],
    )
    conn.executemany("INSERT INTO sc_log(origin, kind, name) VALUES ('x', 0, ?)", [(f"old:{i}",) for i in range(20)])
    conn.execute("INSERT INTO sc_gens(name, gen) VALUES ('ns', 7)")
    conn.execute("COMMIT")
    conn.close()


def _open(db: Path) -> sc.Cache:
    return sc.Cache(sc.SQLiteTier(db, max_bytes=None), namespace="ns", ttl=None, clock=FakeClock())


def test_a_new_file_records_the_current_version(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    with _open(db) as cache:
        cache.set("k", 1)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT v FROM sc_meta WHERE k = 'schema'").fetchone()[0] == SCHEMA_VERSION
    assert "AUTOINCREMENT" not in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'sc_log'").fetchone()[0]
    conn.close()


def test_an_older_file_is_recreated_keeping_generations_and_the_log_sequence(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    _v1_file(db)
    with _open(db) as cache:
        store = next(s for s in cache._lower if isinstance(s, SQLiteStore))
        assert store.usage() == (0, 0)  # the old rows are gone, and the totals say so
        assert store.get_gens(["ns"]) == (7,)  # generation counters survive: old copies elsewhere stay invalid
        assert store.fence(["k"]) >= 20  # the sequence goes on: cursors and fences taken before stay meaningful
        cache.set_many({f"k{i}": i for i in range(10)})
        assert cache.get_many([f"k{i}" for i in range(10)]) == {f"k{i}": i for i in range(10)}
        entries, nbytes = store.usage()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT v FROM sc_meta WHERE k = 'schema'").fetchone()[0] == SCHEMA_VERSION
    assert "AUTOINCREMENT" not in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'sc_log'").fetchone()[0]
    assert conn.execute("SELECT COUNT(*), SUM(size) FROM sc_entries").fetchone() == (entries, nbytes) == (10, nbytes)
    seqs = [r[0] for r in conn.execute("SELECT seq FROM sc_log ORDER BY seq")]
    assert seqs[0] == 20  # no reuse
    assert seqs == list(range(20, 20 + len(seqs)))  # no gap
    conn.close()


def test_two_stores_opening_an_older_file_upgrade_it_once(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    _v1_file(db)
    with _open(db) as a:
        a.set("k", "a")
        with _open(db) as b:  # the file is current now: b must not recreate it under a
            assert b.get("k") == "a"


def test_a_file_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    with _open(db) as cache:
        cache.set("k", 1)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE sc_meta SET v = ? WHERE k = 'schema'", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(sc.TierError, match="newer"):
        _open(db)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM sc_entries").fetchone()[0] == 1
    conn.close()
