"""The embedded tier: one SQLite file in WAL mode, shared safely by threads and processes.

Layout (all tables prefixed ``sc_``):

- ``sc_entries(key, env, gc_at, size, atime)``: serialized envelopes. ``gc_at`` is when the row may be collected
  (freshness itself is decided by the engine from the envelope); ``atime`` drives approximate-LRU eviction.
- ``sc_meta``: running totals of rows and bytes, kept exact by triggers, so the byte bound costs no scan.
- ``sc_gens(name, gen)``: namespace and tag generation counters (``invalidate_tags`` is one UPSERT per tag).
- ``sc_log(seq, origin, kind, name)``: the backplane over SQLite. Every write, delete and generation bump is
  logged with the writing store's origin id; other processes read new rows when the database changed,
  drop the named keys from their L1 and learn new generations. The log is pruned to its newest rows; a reader
  that fell behind the pruned range flushes its whole L1.

Each thread gets its own connection (SQLite connections must not be shared across threads mid-statement), closed
when the thread ends; statements are prepared once by sqlite3's statement cache; PRAGMAs run once per connection,
never per call. A read never writes: access times (at half-minute granularity) are buffered in memory and written
by the next write transaction, which is also the only place eviction runs. Corrupt or truncated rows are misses
(counted as errors) and are deleted. Commits by other connections are noticed by comparing the WAL-index header
in the memory-mapped ``-shm`` file, with ``PRAGMA data_version`` as the fallback.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import sqlite3
import threading
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Final

from stratacache._types import Changes
from stratacache.core.envelope import decode_envelope, encode_envelope
from stratacache.errors import DecodeError, TierError
from stratacache.metrics.stats import TierCounters

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from stratacache.core.envelope import Envelope

__all__ = ["SQLiteStore"]

SCHEMA_VERSION: Final = 2  # 2: sc_log without AUTOINCREMENT, size trigger only on a change
_KIND_KEY: Final = 0
_KIND_GEN: Final = 1
_LOG_KEEP: Final = 50_000
_LOG_READ_LIMIT: Final = 10_000
_TOUCH_GRANULARITY: Final = 30.0  # seconds: LRU by the half-minute is close enough to order evictions
_TOUCH_MAX: Final = 8192  # buffered access times; eviction only runs inside writes, which apply them first
_WAL_HEADER: Final = 48
_NUMBER: Final = (float, int)  # a tuple, not ``float | int``: that builds a union object at every evaluation
_CHUNK: Final = 500  # below SQLite's default limit of host parameters
_REFRESH_MAX: Final = 64  # batches up to this size first try to overwrite rows without moving their atime
_CACHE_KIB: Final = -32768  # PRAGMA cache_size: negative means KiB
_GC_RECHECK: Final = 1.0  # seconds: how late another store's expired rows may be noticed by this one's writes

# One statement each: they run inside the transaction that creates or upgrades the layout.
_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS sc_entries(
        key TEXT PRIMARY KEY,
        env BLOB NOT NULL,
        gc_at REAL,
        size INTEGER NOT NULL,
        atime REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS sc_entries_gc ON sc_entries(gc_at) WHERE gc_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS sc_entries_atime ON sc_entries(atime)",
    "CREATE TABLE IF NOT EXISTS sc_meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT OR IGNORE INTO sc_meta(k, v) VALUES ('bytes', 0), ('entries', 0)",
    "CREATE TABLE IF NOT EXISTS sc_gens(name TEXT PRIMARY KEY, gen INTEGER NOT NULL) WITHOUT ROWID",
    # No AUTOINCREMENT (it rewrites sqlite_sequence on every insert): pruning never deletes the newest row, so
    # max(seq) + 1 never reuses a number and the sequence has no gaps.
    """CREATE TABLE IF NOT EXISTS sc_log(
        seq INTEGER PRIMARY KEY,
        origin TEXT NOT NULL,
        kind INTEGER NOT NULL,
        name TEXT NOT NULL
    )""",
    """CREATE TRIGGER IF NOT EXISTS sc_entries_ins AFTER INSERT ON sc_entries BEGIN
        UPDATE sc_meta SET v = v + NEW.size WHERE k = 'bytes';
        UPDATE sc_meta SET v = v + 1 WHERE k = 'entries';
    END""",
    """CREATE TRIGGER IF NOT EXISTS sc_entries_del AFTER DELETE ON sc_entries BEGIN
        UPDATE sc_meta SET v = v - OLD.size WHERE k = 'bytes';
        UPDATE sc_meta SET v = v - 1 WHERE k = 'entries';
    END""",
    """CREATE TRIGGER IF NOT EXISTS sc_entries_upd AFTER UPDATE OF size ON sc_entries
    WHEN NEW.size <> OLD.size BEGIN
        UPDATE sc_meta SET v = v + NEW.size - OLD.size WHERE k = 'bytes';
    END""",
)
# Load leases (LoadPolicy.lease_wait): created on first use, so files of this layout version need no upgrade.
_LEASES: Final = (
    "CREATE TABLE IF NOT EXISTS sc_leases(key TEXT PRIMARY KEY, origin TEXT NOT NULL, until REAL NOT NULL) "
    "WITHOUT ROWID"
)
# What an older layout leaves behind: dropped and created again (a cache: the rows may go). sc_gens keeps its
# layout and its counters, so entries cached elsewhere under old generations stay invalid.
_DROP_OLD: Final = (
    "DROP TRIGGER IF EXISTS sc_entries_ins",
    "DROP TRIGGER IF EXISTS sc_entries_del",
    "DROP TRIGGER IF EXISTS sc_entries_upd",
    "DROP TABLE IF EXISTS sc_entries",
    "DROP TABLE IF EXISTS sc_log",
    "UPDATE sc_meta SET v = 0 WHERE k IN ('bytes', 'entries')",
)

_UPSERT: Final = (
    "INSERT INTO sc_entries(key, env, gc_at, size, atime) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET env = excluded.env, gc_at = excluded.gc_at, "
    "size = excluded.size, atime = excluded.atime"
)
# An overwrite of a row accessed within the touch granularity leaves atime (and so its index page) alone: one
# page fewer to write per commit. Access times have that granularity anyway (see get_many).
_REFRESH: Final = "UPDATE sc_entries SET env = ?, gc_at = ?, size = ? WHERE key = ? AND atime >= ?"
_GET_ONE: Final = "SELECT env, atime FROM sc_entries WHERE key = ?"
_LOG: Final = "INSERT INTO sc_log(origin, kind, name) VALUES (?, ?, ?)"


def _chunks(seq: Sequence[str], n: int = _CHUNK) -> list[Sequence[str]]:
    return [seq[i : i + n] for i in range(0, len(seq), n)]


# (st_dev, st_ino) of a -shm file -> its descriptor and read-only map, for the life of the process. Neither is
# ever closed: POSIX advisory locks belong to the process, and closing *any* descriptor of a file drops every
# lock the process holds on it, the locks SQLite's own connections hold on the -shm file included. Without them
# another process would take itself for the first connection and truncate and rebuild the WAL index under
# this one's connections (SIGBUS, and a WAL index out of step). So one descriptor per file, kept open.
_SHM_MAPS: dict[tuple[int, int], mmap.mmap | None] = {}
_SHM_LOCK = threading.Lock()


def _shm_map(path: str) -> mmap.mmap | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    key = (st.st_dev, st.st_ino)
    with _SHM_LOCK:
        if key in _SHM_MAPS:
            return _SHM_MAPS[key]
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        shm: mmap.mmap | None
        try:
            shm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)  # keeps a duplicate of fd, never closed either
        except (OSError, ValueError):
            shm = None
        if shm is not None and len(shm) < _WAL_HEADER:
            shm = None  # not closed (see above): too short to hold a WAL-index header
        _SHM_MAPS[key] = shm  # fd stays open on purpose
        return shm


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the C type cannot), so a dead thread's one is closed."""


class _Local(threading.local):
    conn: sqlite3.Connection | None = None
    # The thread's cursor for one-key reads, reused: no cursor object per get. A point lookup by primary key
    # leaves no statement running (sqlite3 steps past the only row inside fetchone and resets the statement),
    # so it holds no read transaction open between gets.
    cursor: sqlite3.Cursor | None = None
    data_version: int = -1


class SQLiteStore:
    """Store of serialized envelopes in one SQLite file (see the module docstring for the layout)."""

    shared = True
    supports_leases = True
    lease_ttl = 30.0

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int | None,
        busy_timeout: float = 5.0,
        now: Callable[[], float],
        name: str = "sqlite",
    ) -> None:
        self.name = name
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.counters = TierCounters()
        self.origin = uuid.uuid4().hex
        self._busy_timeout = busy_timeout
        self._now = now
        self._local = _Local()
        # Weak: a thread's connection closes when the thread ends; the first one (the anchor) lives as long as the
        # store, which keeps SQLite from truncating the memory-mapped -shm file under us.
        self._conns: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        self._anchor: sqlite3.Connection | None = None
        self._conns_lock = threading.Lock()
        self._touched: dict[str, float] = {}
        self._log_cursor = -1
        self._poll_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._writes = 0
        self._logged = 0  # log rows written by the current write transaction (write lock held)
        self._gc_next = float("-inf")  # no expired row can exist before this time (see _maintain)
        self._closed = False
        self._connect()  # fail at build time on a bad path, not at the first read
        self._log_cursor = self._max_seq()
        # Mapped after the first connection has opened the WAL index; this store's connections keep SQLite
        # from truncating the -shm file while it is mapped (it does so only when the first connection opens it).
        self._shm = self._map_shm()
        self._shm_seen = b""

    # ------------------------------------------------------------------ connections

    def _connect(self) -> sqlite3.Connection:
        conn = self._local.conn
        if conn is not None:
            return conn
        if self._closed:
            raise TierError("SQLite store is closed")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=64,
                factory=_Connection,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.close()
                raise TierError(f"cannot put {self.path} in WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = NORMAL")
            # Up to 32 MiB of pages per connection (default 2 MiB): the index and table interior pages of a
            # million-row file stay cached, so a read stays about one page fetch. Allocated only as pages are read.
            conn.execute(f"PRAGMA cache_size = {_CACHE_KIB}")
            self._ensure_schema(conn)
        except (sqlite3.Error, OSError) as exc:
            raise TierError(f"cannot open SQLite cache at {self.path}: {exc}") from exc
        self._local.conn = conn
        self._local.cursor = conn.cursor()
        self._local.data_version = -1
        with self._conns_lock:
            self._conns.add(conn)
            if self._anchor is None:
                self._anchor = conn
        return conn

    def _cursor(self) -> sqlite3.Cursor:
        """This thread's reusable cursor (see :class:`_Local`), opening its connection if needed."""
        conn = self._connect()
        cursor = self._local.cursor
        if cursor is None:  # not reached: _connect sets both
            cursor = self._local.cursor = conn.cursor()
        return cursor

    @staticmethod
    def _schema_of(conn: sqlite3.Connection) -> int | None:
        """The layout version recorded in the file, ``None`` when there is none (a new file, or a foreign one)."""
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sc_meta'").fetchone() is None:
            return None
        row = conn.execute("SELECT v FROM sc_meta WHERE k = 'schema'").fetchone()
        return None if row is None else int(row[0])

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        """Create the tables, or recreate them if an older stratacache wrote the file; once per connection.

        The check is a read; the creation or upgrade is one write transaction that checks again, so processes
        opening the same old file at once upgrade it once. An upgrade drops every entry (it is a cache) but keeps
        the generation counters and the log's sequence, so other stores' cursors and fences stay meaningful.
        """
        if self._schema_of(conn) == SCHEMA_VERSION:
            return
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._schema_of(conn)
                if version is not None and version > SCHEMA_VERSION:
                    raise self._newer(version)  # noqa: TRY301 - rolled back below like any failure
                last = 0
                if version is not None and version < SCHEMA_VERSION:
                    row = conn.execute("SELECT MAX(seq) FROM sc_log").fetchone()
                    last = int(row[0]) if row and row[0] is not None else 0
                    for statement in _DROP_OLD:
                        conn.execute(statement)
                for statement in _SCHEMA:
                    conn.execute(statement)
                if last:  # the sequence goes on from where it was
                    conn.execute("INSERT INTO sc_log(seq, origin, kind, name) VALUES (?, '', ?, '')", (last, _KIND_KEY))
                if version != SCHEMA_VERSION:
                    conn.execute(
                        "INSERT INTO sc_meta(k, v) VALUES ('schema', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                        (SCHEMA_VERSION,),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _newer(self, version: int) -> TierError:
        return TierError(
            f"{self.path} has layout version {version}, written by a newer stratacache "
            f"(this one writes {SCHEMA_VERSION}); delete the file or upgrade stratacache"
        )

    def _write(self, fn: Callable[[sqlite3.Connection], int]) -> int:
        """Run ``fn`` in one ``BEGIN IMMEDIATE`` transaction, with maintenance, and commit.

        Writers of this process queue on a lock first: SQLite's busy handler sleeps in growing steps (up to
        100 ms) when the write lock is taken, so letting this process's threads contend inside SQLite turns a
        0.1 ms write into a multi-millisecond tail. Other processes still meet the busy timeout.
        """
        conn = self._connect()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._logged = 0
                try:
                    result = fn(conn)
                    self._maintain(conn)
                    # This transaction's log rows are the newest ones: numbered max + 1 each (no gaps).
                    last = self._top(conn) if self._logged else 0
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise TierError(f"SQLite write failed: {exc}") from exc
            logged = self._logged
        if logged:
            self._skip_own(last - logged, last)
        return result

    def _log(self, conn: sqlite3.Connection, rows: list[tuple[str, int, str]]) -> None:
        """Append ``(origin, kind, name)`` rows to ``sc_log`` (inside :meth:`_write`, which counts them)."""
        if len(rows) == 1:
            conn.execute(_LOG, rows[0])
        elif rows:
            conn.executemany(_LOG, rows)
        self._logged += len(rows)

    @staticmethod
    def _top(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT MAX(seq) FROM sc_log").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _skip_own(self, top: int, last: int) -> None:
        """Move the log cursor past this store's own commit, and mark the database state seen if nothing followed.

        The commit logged ``top + 1 .. last``, all of them its own rows (it held SQLite's write lock). If nothing
        older is pending, the cursor moves past them, so the next poll does not read them only to skip them. The
        state (the mapped WAL-index header) is read first, then the newest sequence number: if that is still
        ``last``, every log row of any commit in that state is applied or this store's own, which is what
        :meth:`poll` guarantees of a state it marks seen. Otherwise the next poll reads what came after ``last``.
        Best effort: any failure leaves the cursor and the state for the next poll, as before.
        """
        with self._poll_lock:
            if self._log_cursor != top:  # older rows not applied yet (or a poll already went past): poll's job
                return
            self._log_cursor = last
            shm = self._shm
            if shm is None:
                return  # data_version does not move for this connection's own commits
            try:
                token = shm[:_WAL_HEADER]
                if self._max_seq() == last:
                    self._shm_seen = token
            except (ValueError, OSError, sqlite3.Error, TierError):
                return

    # ------------------------------------------------------------------ store protocol

    def get_many(self, keys: Sequence[str]) -> list[Envelope[bytes] | None]:
        """Envelopes of ``keys`` (``None`` where absent or corrupt), without writing anything.

        One key (the engine's ``get``) takes its own path: the thread's reused cursor, one prepared statement
        (sqlite3's statement cache), the envelope decoded in one msgspec pass.
        """
        if len(keys) == 1:
            return [self._get_one(keys[0])]
        rows = self._fetch(keys)
        out: list[Envelope[bytes] | None] = []
        now = self._now()
        corrupt: list[str] = []
        for key in keys:
            row = rows.get(key)
            if row is None:
                out.append(None)
                continue
            try:
                out.append(decode_envelope(row[0]))
            except DecodeError:
                self.counters.errors += 1
                corrupt.append(key)
                out.append(None)
                continue
            atime = row[1]
            if isinstance(atime, _NUMBER) and now - atime > _TOUCH_GRANULARITY and len(self._touched) < _TOUCH_MAX:
                self._touched[key] = now
        if corrupt:
            self._drop_quietly(corrupt)
        return out

    def _get_one(self, key: str) -> Envelope[bytes] | None:
        """:meth:`get_many` of one key: the engine's ``get``, hence its own path."""
        cursor = self._local.cursor or self._cursor()
        try:
            row = cursor.execute(_GET_ONE, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise TierError(f"SQLite read failed: {exc}") from exc
        if row is None:
            return None
        blob, atime = row
        try:
            env = decode_envelope(blob)
        except DecodeError:
            self.counters.errors += 1
            self._drop_quietly([key])
            return None
        if isinstance(atime, _NUMBER):
            now = self._now()
            if now - atime > _TOUCH_GRANULARITY and len(self._touched) < _TOUCH_MAX:
                self._touched[key] = now
        return env

    def _fetch(self, keys: Sequence[str]) -> dict[str, tuple[bytes, float]]:
        """``{key: (envelope blob, atime)}`` for the keys present: one statement per 500 keys."""
        conn = self._connect()
        rows: dict[str, tuple[bytes, float]] = {}
        try:
            for part in _chunks(list(dict.fromkeys(keys))):
                marks = ",".join("?" * len(part))
                sql = f"SELECT key, env, atime FROM sc_entries WHERE key IN ({marks})"  # noqa: S608 - placeholders only
                for k, blob, atime in conn.execute(sql, tuple(part)):
                    rows[k] = (blob, atime)
        except sqlite3.Error as exc:
            raise TierError(f"SQLite read failed: {exc}") from exc
        return rows

    def set_many(self, items: Sequence[tuple[str, Envelope[bytes]]]) -> None:
        """Upsert envelopes in one transaction and log the keys for other processes' L1."""
        now = self._now()
        rows = []
        for key, env in items:
            blob = encode_envelope(env)
            rows.append((key, blob, env.gc_at(), len(blob), now))
        origin = self.origin

        def txn(conn: sqlite3.Connection) -> int:
            self._upsert(conn, rows, now)
            self._log(conn, [(origin, _KIND_KEY, r[0]) for r in rows])
            return len(rows)

        self._write(txn)

    def _upsert(
        self, conn: sqlite3.Connection, rows: list[tuple[str, bytes, float | None, int, float]], now: float
    ) -> None:
        """Write ``rows`` (inside a write transaction); note their expiry for :meth:`_maintain`."""
        todo = rows
        if len(rows) <= _REFRESH_MAX:
            fresh = now - _TOUCH_GRANULARITY
            todo = [r for r in rows if conn.execute(_REFRESH, (r[1], r[2], r[3], r[0], fresh)).rowcount == 0]
        if len(todo) == 1:
            conn.execute(_UPSERT, todo[0])
        elif todo:
            conn.executemany(_UPSERT, todo)
        gc_next = self._gc_next
        for r in rows:
            gc_at = r[2]
            if gc_at is not None and gc_at < gc_next:
                gc_next = gc_at
        self._gc_next = gc_next

    def delete_many(self, keys: Sequence[str]) -> int:
        """Delete keys in one transaction; return how many existed."""
        origin = self.origin

        def txn(conn: sqlite3.Connection) -> int:
            n = 0
            for key in keys:
                n += conn.execute("DELETE FROM sc_entries WHERE key = ?", (key,)).rowcount
            self._log(conn, [(origin, _KIND_KEY, k) for k in keys])
            return n

        return self._write(txn)

    def get_gens(self, names: Sequence[str]) -> tuple[int, ...]:
        """Current generation of each name (0 when never bumped)."""
        conn = self._connect()
        found: dict[str, int] = {}
        try:
            for part in _chunks(list(names)):
                sql = f"SELECT name, gen FROM sc_gens WHERE name IN ({','.join('?' * len(part))})"  # noqa: S608
                found.update(conn.execute(sql, tuple(part)).fetchall())
        except sqlite3.Error as exc:
            raise TierError(f"SQLite read failed: {exc}") from exc
        return tuple(found.get(n, 0) for n in names)

    def bump_gens(self, names: Sequence[str]) -> tuple[int, ...]:
        """Increment counters atomically (one UPSERT each) and log them; return the new values."""
        origin = self.origin
        out: list[int] = []

        def txn(conn: sqlite3.Connection) -> int:
            for name in names:
                row = conn.execute(
                    "INSERT INTO sc_gens(name, gen) VALUES (?, 1) "
                    "ON CONFLICT(name) DO UPDATE SET gen = gen + 1 RETURNING gen",
                    (name,),
                ).fetchone()
                out.append(int(row[0]))
            self._log(conn, [(origin, _KIND_GEN, n) for n in names])
            return len(names)

        self._write(txn)
        return tuple(out)

    def _change_token(self, conn: sqlite3.Connection) -> bytes | int:
        """What identifies the database's current commit state for this thread (see :meth:`poll`).

        Fast path: the WAL-index header (first 48 bytes of the ``-shm`` file, memory-mapped) changes with every
        commit and checkpoint (SQLite file format, "WAL-index format"); reading it costs ~0.1 µs against ~4 µs for
        ``PRAGMA data_version``, which remains the fallback where the map is unavailable.
        """
        shm = self._shm
        if shm is not None:
            try:
                return shm[:_WAL_HEADER]
            except (ValueError, OSError):
                self._shm = None
        return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def _seen(self, token: bytes | int) -> bool:
        if isinstance(token, bytes):
            return token == self._shm_seen
        return token == self._local.data_version

    def _mark_seen(self, token: bytes | int) -> None:
        if isinstance(token, bytes):
            self._shm_seen = token
        else:
            self._local.data_version = token

    def _map_shm(self) -> mmap.mmap | None:
        """The process-wide read-only map of the ``-shm`` file; ``None`` if unavailable (``PRAGMA data_version``)."""
        return _shm_map(f"{self.path}-shm")

    def poll(self, apply: Callable[[Changes], None]) -> None:
        """Pass what other stores changed since the last poll to ``apply``, and return once it is applied.

        A memory read when nothing was committed. Otherwise the log is read and applied under a lock, and only
        then marked as seen: a thread polling meanwhile waits for the lock instead of returning early and
        serving an L1 entry that is about to be dropped.

        Raises:
            TierError: the log could not be read (the caller must then distrust its L1).
        """
        shm = self._shm
        if shm is not None:
            try:
                if shm[:_WAL_HEADER] == self._shm_seen:
                    return  # _seen(_change_token(...)) on the map, without the calls or the connection
            except (ValueError, OSError):
                pass  # _change_token below drops the map
        conn = self._connect()
        try:
            if self._seen(self._change_token(conn)):
                return
            with self._poll_lock:
                token = self._change_token(conn)  # read before the log: a later commit changes it again
                if self._seen(token):
                    return
                changes, cursor = self._read_log(conn)
                if changes is not None:
                    apply(changes)
                self._log_cursor = cursor
                self._mark_seen(token)
        except sqlite3.Error as exc:
            raise TierError(f"SQLite poll failed: {exc}") from exc

    def _read_log(self, conn: sqlite3.Connection) -> tuple[Changes | None, int]:
        """Other stores' log rows after the cursor, as changes, and the new cursor (poll lock held)."""
        cursor = self._log_cursor
        rows = conn.execute(
            "SELECT seq, origin, kind, name FROM sc_log WHERE seq > ? ORDER BY seq LIMIT ?",
            (cursor, _LOG_READ_LIMIT + 1),
        ).fetchall()
        if not rows:
            return None, cursor
        if len(rows) > _LOG_READ_LIMIT:
            return Changes(keys=(), gens={}, flush_all=True), self._max_seq()
        if rows[0][0] != cursor + 1:  # the sequence has no gaps: unless pruned past the cursor, this is it
            first = conn.execute("SELECT MIN(seq) FROM sc_log").fetchone()[0]
            if first is not None and first > cursor + 1:
                return Changes(keys=(), gens={}, flush_all=True), self._max_seq()
        keys: list[str] = []
        bumped: list[str] = []
        for _seq, origin, kind, name in rows:
            if origin == self.origin:
                continue
            if kind == _KIND_KEY:
                keys.append(name)
            else:
                bumped.append(name)
        gens = dict(zip(bumped, self.get_gens(bumped), strict=True)) if bumped else {}
        if not keys and not gens:
            return None, rows[-1][0]
        return Changes(keys=tuple(keys), gens=gens, flush_all=False), rows[-1][0]

    def fence(self, keys: Sequence[str]) -> int:  # noqa: ARG002 - SQLite fences every key at once
        """A write fence: the newest log sequence number. Take it before loading; hand it to :meth:`fill_many`.

        Raises:
            TierError: the database cannot be read.
        """
        try:
            return self._max_seq()
        except sqlite3.Error as exc:
            raise TierError(f"SQLite read failed: {exc}") from exc

    def scan(self, prefix: str, cursor: object, count: int) -> tuple[object, list[str]]:
        """One page of at most ``count`` keys starting with ``prefix``, after ``cursor`` (``None``: the start).

        Walks the primary-key index in key order; returns ``(next cursor or None when done, keys)``.
        """
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"
        after = cursor if isinstance(cursor, str) else ""
        try:
            rows = (
                self._connect()
                .execute(
                    "SELECT key FROM sc_entries WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?",
                    (prefix, upper, after, count),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            raise TierError(f"SQLite read failed: {exc}") from exc
        keys = [row[0] for row in rows]
        return (keys[-1] if len(keys) == count else None), keys

    def claim(self, key: str, ttl: float) -> int | None:
        """Take the load lease of ``key`` for ``ttl`` seconds if no live lease exists (one row of ``sc_leases``).

        Returns the write fence at that moment (the newest log sequence number, for :meth:`fill_many`), or
        ``None`` if another store holds the lease. The table is created on first use.
        """
        now = self._now()
        origin = self.origin

        def txn(conn: sqlite3.Connection) -> int:
            conn.execute(_LEASES)
            conn.execute("DELETE FROM sc_leases WHERE key = ? AND until <= ?", (key, now))
            taken = conn.execute(
                "INSERT OR IGNORE INTO sc_leases(key, origin, until) VALUES (?, ?, ?)", (key, origin, now + ttl)
            ).rowcount
            if not taken:
                return -1
            row = conn.execute("SELECT MAX(seq) FROM sc_log").fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        fence = self._write(txn)
        return None if fence < 0 else fence

    def release(self, key: str, token: int) -> None:  # noqa: ARG002 - a lease is this store's by its origin
        """Drop this store's lease of ``key`` (if it still holds it)."""
        origin = self.origin
        self._write(
            lambda conn: conn.execute("DELETE FROM sc_leases WHERE key = ? AND origin = ?", (key, origin)).rowcount
        )

    def fill_many(self, items: Sequence[tuple[str, Envelope[bytes]]], since: int) -> list[str]:
        """Store loaded values, except for keys written or deleted (by anyone) after the fence ``since``.

        One transaction: the check and the write are atomic against every other process. If the log was pruned
        past the fence, nothing can be verified and nothing is stored. Returns the keys stored.
        """
        now = self._now()
        origin = self.origin

        def txn(conn: sqlite3.Connection) -> int:
            first = conn.execute("SELECT MIN(seq) FROM sc_log").fetchone()[0]
            if first is not None and first > since + 1:
                return 0
            keys = [k for k, _ in items]
            written: set[str] = set()
            for part in _chunks(keys):
                marks = ",".join("?" * len(part))
                sql = f"SELECT name FROM sc_log WHERE seq > ? AND kind = {_KIND_KEY} AND name IN ({marks})"  # noqa: S608
                written.update(r[0] for r in conn.execute(sql, (since, *part)))
            rows = []
            for key, env in items:
                if key not in written:
                    blob = encode_envelope(env)
                    rows.append((key, blob, env.gc_at(), len(blob), now))
            self._upsert(conn, rows, now)
            self._log(conn, [(origin, _KIND_KEY, r[0]) for r in rows])
            stored.extend(r[0] for r in rows)
            return len(rows)

        stored: list[str] = []
        self._write(txn)
        return stored

    def usage(self) -> tuple[int, int]:
        """``(entries, bytes)`` from the trigger-maintained totals."""
        try:
            rows = dict(self._connect().execute("SELECT k, v FROM sc_meta").fetchall())
        except sqlite3.Error as exc:
            raise TierError(f"SQLite read failed: {exc}") from exc
        return int(rows.get("entries", 0)), int(rows.get("bytes", 0))

    def close(self) -> None:
        """Flush buffered access times and close every thread's connection."""
        if self._closed:
            return
        self._flush_touches_quietly()
        self._closed = True
        self._shm = None  # the map is process-wide and never closed (see _shm_map)
        with self._conns_lock:
            conns, self._conns = list(self._conns), weakref.WeakSet()
            self._anchor = None
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):  # best effort at shutdown
                conn.close()

    # ------------------------------------------------------------------ maintenance

    def _max_seq(self) -> int:
        return self._top(self._connect())

    def _maintain(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: apply buffered touches, reclaim expired rows, enforce the byte bound."""
        if self._touched:
            touched, self._touched = self._touched, {}
            conn.executemany("UPDATE sc_entries SET atime = ? WHERE key = ?", [(t, k) for k, t in touched.items()])
        now = self._now()
        if now >= self._gc_next:
            self._reclaim(conn, now)
        if self.max_bytes is not None:
            self._evict(conn, self.max_bytes)
        self._writes += 1
        if self._writes % 256 == 0:
            conn.execute(
                "DELETE FROM sc_log WHERE seq <= (SELECT MAX(seq) FROM sc_log) - ?",
                (_LOG_KEEP,),
            )

    def _reclaim(self, conn: sqlite3.Connection, now: float) -> None:
        """Delete up to 32 rows whose ``gc_at`` has passed, and learn when the next one is due.

        Writes skip this until then: this store's own writes lower the due time (:meth:`_upsert`), and rows that
        other stores write are looked for again at least every ``_GC_RECHECK`` seconds.
        """
        expired = conn.execute(
            "DELETE FROM sc_entries WHERE key IN "
            "(SELECT key FROM sc_entries WHERE gc_at IS NOT NULL AND gc_at <= ? ORDER BY gc_at LIMIT 32)",
            (now,),
        ).rowcount
        if expired > 0:
            self.counters.expirations += expired
        if expired >= 32:
            self._gc_next = now  # more may be due: the next write sweeps again
            return
        row = conn.execute("SELECT MIN(gc_at) FROM sc_entries WHERE gc_at IS NOT NULL").fetchone()
        due = now + _GC_RECHECK
        self._gc_next = due if row is None or row[0] is None else min(float(row[0]), due)

    def _evict(self, conn: sqlite3.Connection, max_bytes: int) -> None:
        """Delete least-recently-used rows until the stored bytes fit, in batches sized by the excess."""
        while True:
            totals = dict(conn.execute("SELECT k, v FROM sc_meta WHERE k IN ('bytes', 'entries')").fetchall())
            total, entries = int(totals.get("bytes", 0)), int(totals.get("entries", 0))
            if total <= max_bytes or entries <= 0:
                return
            batch = min(64, max(1, (total - max_bytes) * entries // total + 1))
            n = conn.execute(
                "DELETE FROM sc_entries WHERE key IN (SELECT key FROM sc_entries ORDER BY atime LIMIT ?)", (batch,)
            ).rowcount
            if n <= 0:
                return
            self.counters.evictions += n

    def _drop_quietly(self, keys: list[str]) -> None:
        try:
            self._write(
                lambda conn: sum(conn.execute("DELETE FROM sc_entries WHERE key = ?", (k,)).rowcount for k in keys)
            )
        except TierError:
            self.counters.errors += 1

    def _flush_touches_quietly(self) -> None:
        if not self._touched or self._closed:
            return
        try:
            self._write(lambda _conn: 0)
        except TierError:
            self.counters.errors += 1
