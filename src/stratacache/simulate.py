"""``stratacache simulate``: replay a key trace against eviction policies and compare their hit ratios.

This is how a user sizes the in-process tier from a log of their own traffic: read the trace
(:func:`read_trace`: one key per line, or a CSV column; gzip accepted), then replay it (:func:`simulate`) against

- ``"lru"``: :class:`~stratacache.tiers.policy.LRUPolicy`;
- ``"tinylfu"``: :class:`~stratacache.tiers.tinylfu.TinyLFUPolicy` with its adaptive window (the default L1);
- ``"tinylfu-fixed"``: the same with the window fixed at 1% of the capacity;
- ``"theine"``: ``theine.Cache`` (a Rust W-TinyLFU core), when theine is installed, otherwise skipped;
- ``"opt"``: Belady's optimum, offline: on a miss, of the resident keys *and the requested one*, the key whose
  next use is farthest is dropped (so a key never used again is not admitted at all). No policy holding at most
  ``capacity`` keys hits more often, including those that may refuse a new key, as theine does at tiny capacities;
- ``"opt-demand"``: Belady's MIN as in the textbooks (demand paging): the requested key is always admitted and the
  victim is the resident key whose next use is farthest. It bounds the policies that always admit (LRU,
  stratacache's W-TinyLFU, whose window takes every new key) and is not replayed unless asked for.

Each policy is driven the way :class:`~stratacache.tiers.memory.MemoryStore` drives it: ``get`` on every access,
and on a miss ``put`` then ``evict`` while over the capacity.

This module uses the standard library and stratacache only; the CLI renders its results.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import heapq
import importlib.util
import io
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stratacache.core.envelope import Envelope
from stratacache.tiers.policy import LRUPolicy
from stratacache.tiers.tinylfu import TinyLFUPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from stratacache.tiers.policy import EvictionPolicy

__all__ = [
    "DEFAULT_POLICIES",
    "POLICIES",
    "BinaryTraceError",
    "EmptyTraceError",
    "MissingColumnError",
    "Result",
    "TraceError",
    "default_capacities",
    "missing_policies",
    "read_trace",
    "simulate",
]

POLICIES: Final = ("lru", "tinylfu", "tinylfu-fixed", "theine", "opt", "opt-demand")
"""Every policy :func:`simulate` knows, in display order."""

DEFAULT_POLICIES: Final = ("lru", "tinylfu", "tinylfu-fixed", "theine", "opt")
"""What ``stratacache simulate`` replays when no ``--policy`` is given (``theine`` only when installed)."""

_FIXED_WINDOW: Final = 0.01
_GZIP_MAGIC: Final = b"\x1f\x8b"
_DUMMY: Final[Envelope[Any]] = Envelope(None, 0, 0.0, None, None, 0.0, 0, (), (), 1)


class TraceError(ValueError):
    """The trace cannot be used (unreadable, empty, binary, or without the requested column)."""


class EmptyTraceError(TraceError):
    """The trace holds no key."""


class BinaryTraceError(TraceError):
    """The trace is not text (NUL bytes, or not UTF-8)."""


class MissingColumnError(TraceError):
    """The requested CSV column is not in the trace."""


@dataclass(frozen=True, slots=True)
class Result:
    """The replay of one policy at one capacity."""

    policy: str
    capacity: int
    hits: int
    requests: int

    @property
    def hit_ratio(self) -> float:
        """``hits / requests`` (0 for no request)."""
        return self.hits / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, ``hit_ratio`` included."""
        return {**asdict(self), "hit_ratio": self.hit_ratio}


# ---------------------------------------------------------------------------------------------- reading traces


def read_trace(path: str | Path, column: str | int | None = None, *, header: bool = True) -> list[str]:
    """Read a key trace: one key per line, or one column of a CSV file; gzip is detected by its magic bytes.

    Args:
        path: the trace file (plain or gzip-compressed UTF-8 text).
        column: ``None`` for one key per line (surrounding whitespace and blank lines are dropped); otherwise the
            CSV column holding the keys, by header name or 0-based index (a string of digits that is not a
            header name is taken as an index).
        header: whether a CSV file starts with a header row (needed to select a column by name).

    Raises:
        TraceError: the file cannot be read or decompressed.
        BinaryTraceError: the data is not UTF-8 text.
        EmptyTraceError: the trace holds no key.
        MissingColumnError: the column is not in the header, or the index is beyond a row.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TraceError(f"cannot read trace {str(path)!r}: {exc.strerror or exc}") from None
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise TraceError(f"trace {str(path)!r} is not a valid gzip file: {exc}") from None
    if b"\x00" in data:
        raise BinaryTraceError(f"trace {str(path)!r} looks binary (NUL bytes): expected text, one key per line")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BinaryTraceError(
            f"trace {str(path)!r} is not UTF-8 text (undecodable byte at offset {exc.start})"
        ) from None
    keys = _lines(text) if column is None else _csv_column(text, column, header=header, path=path)
    if not keys:
        raise EmptyTraceError(f"trace {str(path)!r} holds no key")
    return keys


def _lines(text: str) -> list[str]:
    return [key for key in (line.strip() for line in text.splitlines()) if key]


def _csv_column(text: str, column: str | int, *, header: bool, path: Path) -> list[str]:
    rows = (row for row in csv.reader(io.StringIO(text, newline="")) if row)
    names: list[str] | None = None
    if header:
        first = next(rows, None)
        if first is None:
            raise EmptyTraceError(f"trace {str(path)!r} holds no key")
        names = [name.strip() for name in first]
    index = _column_index(column, names, path)
    keys: list[str] = []
    for lineno, row in enumerate(rows, start=2 if header else 1):
        if index >= len(row):
            raise MissingColumnError(
                f"trace {str(path)!r}: row {lineno} has {len(row)} column(s), no column {index} (0-based)"
            )
        key = row[index].strip()
        if key:
            keys.append(key)
    return keys


def _column_index(column: str | int, names: list[str] | None, path: Path) -> int:
    if isinstance(column, str):
        if names is not None and column.strip() in names:
            return names.index(column.strip())
        if not column.strip().isdigit():
            known = ", ".join(repr(n) for n in names) if names else "no header row"
            raise MissingColumnError(f"trace {str(path)!r} has no column {column!r} (columns: {known})")
        column = int(column)
    if column < 0:
        raise MissingColumnError(f"column index must be 0 or more, not {column}")
    if names is not None and column >= len(names):
        raise MissingColumnError(f"trace {str(path)!r} has {len(names)} column(s): no column {column} (0-based)")
    return column


# ---------------------------------------------------------------------------------------------- simulation


def default_capacities(trace: Sequence[str]) -> list[int]:
    """1% and 10% of the distinct keys (at least 1 each, without duplicates)."""
    distinct = len(set(trace))
    return sorted({max(1, round(distinct * share)) for share in (0.01, 0.1)})


def missing_policies(policies: Iterable[str]) -> dict[str, str]:
    """The policies among ``policies`` that cannot run here, each with the reason (theine not installed)."""
    missing: dict[str, str] = {}
    for name in policies:
        if name == "theine" and importlib.util.find_spec("theine") is None:
            missing[name] = "theine is not installed (pip install theine)"
    return missing


def simulate(
    trace: Sequence[str],
    capacities: Iterable[int],
    policies: Iterable[str] = DEFAULT_POLICIES,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[Result]:
    """Replay ``trace`` against every policy at every capacity (capacity-major order).

    Policies that cannot run here (see :func:`missing_policies`) are skipped. W-TinyLFU uses a stable key hash
    and ``seed`` for its tie-breaks, so results do not depend on ``PYTHONHASHSEED``.

    Raises:
        ValueError: an unknown policy or a capacity below 1.
        EmptyTraceError: ``trace`` is empty.
    """
    policies = list(dict.fromkeys(policies))
    caps = list(dict.fromkeys(capacities))
    _check(policies, caps)
    if not trace:
        raise EmptyTraceError("the trace holds no key")
    skipped = missing_policies(policies)
    runnable = [name for name in policies if name not in skipped]
    hashes: dict[str, int] = {}
    if "tinylfu" in runnable or "tinylfu-fixed" in runnable:
        hashes = {key: _stable_hash(key) for key in dict.fromkeys(trace)}
    next_use = _next_uses(trace) if "opt" in runnable or "opt-demand" in runnable else []
    results: list[Result] = []
    for cap in caps:
        for name in runnable:
            if progress is not None:
                progress(f"{name} at capacity {cap:,}")
            if name == "theine":
                hits = _replay_theine(trace, cap)
            elif name in {"opt", "opt-demand"}:
                hits = _replay_opt(trace, cap, next_use, admit_all=name == "opt-demand")
            else:
                hits = _replay_policy(trace, cap, _make(name, cap, seed, hashes))
            results.append(Result(name, cap, hits, len(trace)))
    return results


def _check(policies: Sequence[str], capacities: Sequence[int]) -> None:
    for name in policies:
        if name not in POLICIES:
            raise ValueError(f"unknown policy {name!r} (known: {', '.join(POLICIES)})")
    for cap in capacities:
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ValueError(f"capacity must be a positive integer, not {cap!r}")


def _stable_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def _make(name: str, capacity: int, seed: int, hashes: dict[str, int]) -> EvictionPolicy:
    if name == "lru":
        return LRUPolicy()
    adaptive = name == "tinylfu"
    return TinyLFUPolicy(capacity, window=_FIXED_WINDOW, adaptive=adaptive, seed=seed, hasher=hashes.__getitem__)


def _replay_policy(trace: Sequence[str], capacity: int, policy: EvictionPolicy) -> int:
    """Drive ``policy`` as ``MemoryStore`` does: ``get``; on a miss ``put``, then ``evict`` while over capacity."""
    hits = 0
    get, put, evict = policy.get, policy.put, policy.evict
    for key in trace:
        if get(key) is not None:
            hits += 1
            continue
        put(key, _DUMMY)
        while len(policy) > capacity:
            if evict() is None:  # pragma: no cover - a non-empty policy always has a victim
                break
    return hits


def _replay_theine(trace: Sequence[str], capacity: int) -> int:
    from theine import Cache

    cache: Any = Cache(capacity)
    get, put = cache.get, cache.set
    hits = 0
    for key in trace:
        _, ok = get(key)
        if ok:
            hits += 1
        else:
            put(key, value=True)
    return hits


def _next_uses(trace: Sequence[str]) -> list[int]:
    """For each position, the position of the same key's next request (``len(trace)`` if none)."""
    n = len(trace)
    nxt = [n] * n
    last: dict[str, int] = {}
    for i in range(n - 1, -1, -1):
        key = trace[i]
        nxt[i] = last.get(key, n)
        last[key] = i
    return nxt


def _replay_opt(trace: Sequence[str], capacity: int, next_use: Sequence[int], *, admit_all: bool) -> int:
    """Belady's optimum in O(n log n): a max-heap of next uses with lazy deletion.

    ``admit_all`` (demand paging): the requested key always enters and a resident key is evicted; otherwise a
    requested key whose next use is farther than every resident's is not admitted. A resident key's heap entries
    other than the one matching its current next use are stale and skipped (a key's next use only grows, so an
    entry matches exactly when it is current).
    """
    resident: dict[str, int] = {}
    heap: list[tuple[int, str]] = []
    hits = 0
    for i, key in enumerate(trace):
        nu = next_use[i]
        if key in resident:
            hits += 1
        elif len(resident) >= capacity:
            while True:
                neg, victim = heap[0]
                if resident.get(victim) == -neg:
                    break
                heapq.heappop(heap)
            if not admit_all and nu >= -neg:
                continue  # the requested key is the one used farthest in the future: keep the residents
            heapq.heappop(heap)
            del resident[victim]
        resident[key] = nu
        heapq.heappush(heap, (-nu, key))
        if len(heap) > 4 * capacity + 64:  # drop the stale entries
            heap = [(-n, k) for k, n in resident.items()]
            heapq.heapify(heap)
    return hits
