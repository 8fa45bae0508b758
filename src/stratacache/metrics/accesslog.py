"""A sampled access log: the hottest keys of a cache now, and a key trace to replay with ``stratacache simulate``.

Off by default. With ``Cache(..., access_log=AccessLog(rate=0.01))`` the engine hands every lookup's key to
:meth:`AccessLog.record`; one in ``1/rate`` is kept (a random draw, so periodic access patterns are not aliased).
Memory is bounded by ``window``: the log keeps the last ``window`` sampled keys and their counts, which is what
:meth:`AccessLog.hot_keys` (and ``stratacache top``) ranks. With ``path`` the sampled keys are also appended to a
text file, one key per line, the input format of ``stratacache simulate``; the file is rotated to ``<path>.1`` at
``max_file_bytes``, so the disk use is bounded too. ``{pid}`` in ``path`` is replaced by the process id: give each
worker process its own file and pass them all to ``stratacache top``.

A sampled trace sizes an L1 well when the rate is high (1.0 for a few minutes) or when it samples keys rather than
requests (``by="key"``: every access of one key in ``1/rate``, the SHARDS method; scale the capacities you simulate
by ``rate``).
"""

from __future__ import annotations

import os
import random
import threading
import zlib
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from stratacache.errors import ConfigError

__all__ = ["AccessLog", "HotKey", "read_hot_keys"]

_FLUSH_BYTES: Final = 64 * 1024
_SCALE: Final = 1 << 32


@dataclass(frozen=True, slots=True)
class HotKey:
    """One key of :meth:`AccessLog.hot_keys`: sampled lookups, of which hits, and its share of all samples."""

    key: str
    count: int
    hits: int
    share: float

    @property
    def hit_ratio(self) -> float:
        """Hits among the key's sampled lookups."""
        return self.hits / self.count if self.count else 0.0


class AccessLog:
    """A bounded, sampled record of the keys a cache is asked for.

    Args:
        rate: fraction of lookups (or of keys, with ``by="key"``) recorded, in ``(0, 1]``.
        window: how many sampled keys are kept in memory for :meth:`hot_keys` (the most recent ones).
        path: also append sampled keys to this file (one per line; ``{pid}`` is replaced by the process id).
        max_file_bytes: rotate the file to ``<path>.1`` when it grows past this size.
        by: ``"request"`` samples lookups at random; ``"key"`` samples a fixed subset of keys (by hash).
        seed: seed of the sampling draws (``by="request"``), for reproducible tests.

    Raises:
        ConfigError: an option is out of range.
    """

    def __init__(
        self,
        rate: float = 0.01,
        *,
        window: int = 10_000,
        path: str | os.PathLike[str] | None = None,
        max_file_bytes: int = 64 * 1024 * 1024,
        by: Literal["request", "key"] = "request",
        seed: int | None = None,
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
            raise ConfigError(f"AccessLog rate must be in (0, 1], got {rate!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ConfigError(f"AccessLog window must be a positive int, got {window!r}")
        if isinstance(max_file_bytes, bool) or not isinstance(max_file_bytes, int) or max_file_bytes < 1024:
            raise ConfigError(f"AccessLog max_file_bytes must be an int >= 1024, got {max_file_bytes!r}")
        if by not in {"request", "key"}:
            raise ConfigError(f"AccessLog by must be 'request' or 'key', got {by!r}")
        self.rate = float(rate)
        self.window = window
        self.by = by
        self.path = None if path is None else Path(str(path).replace("{pid}", str(os.getpid())))
        self.max_file_bytes = max_file_bytes
        self._draw = random.Random(seed).random  # noqa: S311 - sampling, not cryptography
        self._threshold = int(self.rate * _SCALE)
        self._recent: deque[tuple[str, bool]] = deque()
        self._counts: Counter[str] = Counter()
        self._hits: Counter[str] = Counter()
        self._buffer: list[str] = []
        self._buffered = 0
        self._lock = threading.Lock()
        self.sampled = 0
        """Keys recorded so far."""

    def record(self, key: str, hit: bool) -> None:
        """Count one lookup of ``key`` (the engine calls this; cheap unless the lookup is sampled)."""
        if self.by == "request":
            if self._draw() >= self.rate:
                return
        elif zlib.crc32(key.encode("utf-8", "surrogatepass")) >= self._threshold:
            return
        with self._lock:
            self.sampled += 1
            recent, counts = self._recent, self._counts
            recent.append((key, hit))
            counts[key] += 1
            if hit:
                self._hits[key] += 1
            if len(recent) > self.window:
                old, old_hit = recent.popleft()
                _decrement(counts, old)
                if old_hit:
                    _decrement(self._hits, old)
            if self.path is not None:
                line = key.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r") + "\n"
                self._buffer.append(line)
                self._buffered += len(line)
                if self._buffered >= _FLUSH_BYTES:
                    self._write()

    def hot_keys(self, n: int = 10) -> list[HotKey]:
        """The ``n`` keys sampled most often in the window, busiest first."""
        with self._lock:
            total = len(self._recent)
            top = self._counts.most_common(n)
            return [HotKey(key, count, self._hits[key], count / total) for key, count in top]

    def flush(self) -> None:
        """Write buffered sampled keys to the file (the engine calls this on ``close``)."""
        with self._lock:
            self._write()

    def _write(self) -> None:
        if self.path is None or not self._buffer:
            return
        data = "".join(self._buffer).encode("utf-8", "surrogatepass")
        self._buffer.clear()
        self._buffered = 0
        try:
            if self.path.exists() and self.path.stat().st_size + len(data) > self.max_file_bytes:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
            with self.path.open("ab") as f:
                f.write(data)
        except OSError:
            return  # a full disk or a removed directory must not break lookups; the samples are lost

    def __repr__(self) -> str:
        return f"AccessLog(rate={self.rate}, window={self.window}, by={self.by!r}, path={self.path!r})"


def _decrement(counter: Counter[str], key: str) -> None:
    left = counter[key] - 1
    if left:
        counter[key] = left
    else:
        del counter[key]


def read_hot_keys(paths: list[Path], n: int = 10, *, last: int | None = None) -> tuple[list[HotKey], int]:
    """Rank the keys of access-log files (``stratacache top``): the ``n`` busiest, and how many lines were read.

    ``last`` keeps only the last lines of each file (the recent traffic). Hits are not in the files: ``hits`` is 0.

    Raises:
        OSError: a file cannot be read.
    """
    counts: Counter[str] = Counter()
    total = 0
    for path in paths:
        with path.open("rb") as f:
            lines: deque[bytes] | list[bytes] = deque(f, maxlen=last) if last else f.readlines()
        for raw in lines:
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if line:
                counts[_unescape(line)] += 1
                total += 1
    return [HotKey(key, count, 0, count / total) for key, count in counts.most_common(n)], total


def _unescape(line: str) -> str:
    if "\\" not in line:
        return line
    out: list[str] = []
    chars = iter(line)
    for c in chars:
        if c == "\\":
            nxt = next(chars, "")
            out.append({"n": "\n", "r": "\r"}.get(nxt, nxt))
        else:
            out.append(c)
    return "".join(out)
