"""The in-process tier (L1): decoded objects, count and byte bounds, amortized expiry, thread-safe.

Reads are lock-free: one to three dict lookups (W-TinyLFU keeps its entries in its three segments) plus the
policy's access record; a miss is confirmed under the lock when the policy says a lock-free lookup can miss a key
being moved. Writes, deletes and evictions take one lock. Expired entries are reclaimed in order of expiry, a few
per write (amortized O(log n) at worst, never a full scan), and lazily when a read finds one.

Memory: an entry costs its :class:`~stratacache.core.envelope.L1Entry` (56 bytes and the ``expires_at`` float),
its key (none of its own for a plain ``str`` key: the engine stores the caller's object, without the namespace
prefix), the policy's slot (one ``OrderedDict`` entry: LRU's, or a W-TinyLFU segment's) and an expiry record.
While expiry times never decrease in write order (one TTL for every entry, the usual case), a record is two
references in parallel deques of keys and times (about 16 bytes, the time being the envelope's own float); an
entry that expires before one written earlier goes to a min-heap of ``(time, key)`` tuples instead (about 64
bytes).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from stratacache.errors import ValueTooLargeError
from stratacache.metrics.stats import TierCounters
from stratacache.tiers.expiry import ExpiryQueue
from stratacache.tiers.policy import make_policy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from stratacache.core.envelope import L1Entry

__all__ = ["MemoryStore"]

_RECLAIM_PER_WRITE = 4
_COMPACT_PER_WRITE = 16  # expiry records examined per write while they are compacted (tiers/expiry.py)


class MemoryStore:
    """L1 store. The engine creates envelopes whose ``size`` is the entry's weight."""

    shared = False

    def __init__(
        self,
        *,
        max_entries: int | None,
        max_bytes: int | None,
        policy: str = "lru",
        copy_on_read: bool = False,
        name: str = "memory",
    ) -> None:
        self.name = name
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.copy_on_read = copy_on_read
        self.counters = TierCounters()
        self._policy = make_policy(policy, max_entries)
        self._lock = threading.Lock()
        self._bytes = 0
        self._expiry = ExpiryQueue()  # in write order while the times never decrease, the rest in a heap
        self._adds = 0  # expiry records added since the last check for a compaction
        self._check_every = 16

    # --- reads (lock-free) ---

    def get(self, key: str) -> L1Entry | None:
        """Return the stored envelope (fresh or not: the engine judges) and record the access.

        Lock-free when the entry is found; a miss is confirmed under the lock when the policy's lock-free
        lookups can miss a key being moved (``exact_lookups``), so a present key is never reported absent.
        """
        return self._confirmed(self._policy.get, key)

    def peek(self, key: str) -> L1Entry | None:
        """Return the stored envelope without recording an access (inspection, not a lookup); misses as :meth:`get`."""
        return self._confirmed(self._policy.peek, key)

    def _confirmed(self, lookup: Callable[[str], L1Entry | None], key: str) -> L1Entry | None:
        env = lookup(key)
        if env is None and not self._policy.exact_lookups:
            with self._lock:
                env = lookup(key)
        return env

    def hit_path(self) -> tuple[tuple[Callable[[str], L1Entry | None], ...], Callable[[str], object]]:
        """``(peeks, touch)``: :meth:`get` split in lock-free C calls, for the engine's inlined hit path.

        ``peeks``: lookups tried in order, the first entry found being the answer (no access recorded); a miss
        of them all may be wrong (it is not confirmed under the lock: the caller then goes through :meth:`get`,
        which does). ``touch(key)`` records the access that :meth:`get` records (``KeyError`` if the key was
        removed meanwhile). The engine peeks, judges the entry, and touches only an entry it serves, so a
        lookup records at most one access, as :meth:`get` does.
        """
        return self._policy.hit_path()

    # --- writes ---

    def check_weight(self, weight: int) -> None:
        """Raise :class:`ValueTooLargeError` if one entry of ``weight`` bytes can never fit."""
        if self.max_bytes is not None and weight > self.max_bytes:
            raise ValueTooLargeError(
                f"value weighs {weight} bytes, more than the memory tier's max_bytes={self.max_bytes}"
            )

    def set(self, key: str, env: L1Entry, now: float) -> None:
        """Insert or replace one entry, then evict to the bounds and reclaim a few expired entries."""
        with self._lock:
            self._put(key, env)
            self._evict()
            self._reclaim(now, _RECLAIM_PER_WRITE)
            if self._expiry.compacting:
                self._expiry.compact(self._valid, _COMPACT_PER_WRITE)

    def set_many(
        self,
        items: Sequence[tuple[str, L1Entry]],
        now: float,
        guard: Callable[[str], bool] | None = None,
    ) -> int:
        """Insert or replace several entries under one lock acquisition; return how many were stored.

        ``guard(key)``, evaluated under the lock, can refuse an item (the engine's check that the key was not
        written or invalidated since the value was read); a refused key's current entry is dropped too, since
        it may be the one that raced. Deletes take the same lock, so none slips between check and write.
        """
        stored = 0
        with self._lock:
            for key, env in items:
                if guard is None or guard(key):
                    self._put(key, env)
                    stored += 1
                else:
                    self._remove(key)
            self._evict()
            self._reclaim(now, _RECLAIM_PER_WRITE * max(1, len(items)))
            if self._expiry.compacting:
                self._expiry.compact(self._valid, _COMPACT_PER_WRITE * max(1, len(items)))
        return stored

    def delete(self, key: str) -> bool:
        """Remove one entry; return whether it was there."""
        with self._lock:
            return self._remove(key)

    def delete_if(self, key: str, env: L1Entry) -> None:
        """Remove ``key`` only if it still holds ``env`` (dropping a dead entry a reader found)."""
        with self._lock:
            if self._policy.peek(key) is env:
                self._remove(key)

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove several entries; return how many were there."""
        with self._lock:
            return sum(self._remove(k) for k in keys)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._policy.clear()
            self._expiry.clear()
            self._bytes = 0

    def keys(self) -> list[str]:
        """A snapshot of every key (for the admin operation ``delete_matching``, never on a hot path)."""
        with self._lock:
            return list(self._policy.keys())

    def usage(self) -> tuple[int, int]:
        """``(entries, bytes)``."""
        return len(self._policy), self._bytes

    def close(self) -> None:
        """Drop every entry."""
        self.clear()

    # --- internals (lock held) ---

    def _put(self, key: str, env: L1Entry) -> None:
        old = self._policy.put(key, env)
        if old is not None:
            self._bytes -= old.size
        self._bytes += env.size
        gc_at = env.gc_at()
        if gc_at is not None:
            if old is not None:
                old_gc = old.gc_at()
                if old_gc is not None and old_gc <= gc_at:
                    return  # the old entry's record comes due first, and re-arms itself (_reclaim): no new one
            expiry = self._expiry
            expiry.add(key, gc_at)
            self._adds += 1
            if self._adds >= self._check_every:  # counting records and entries costs a few calls: not every write
                self._adds = 0
                entries = len(self._policy)
                self._check_every = max(16, entries // 8)
                if expiry.needs_compaction(entries):
                    expiry.start_compaction()

    def _remove(self, key: str) -> bool:
        old = self._policy.pop(key)
        if old is None:
            return False
        self._bytes -= old.size
        return True

    def _evict(self) -> None:
        max_entries, max_bytes = self.max_entries, self.max_bytes
        policy = self._policy
        while (max_entries is not None and len(policy) > max_entries) or (
            max_bytes is not None and self._bytes > max_bytes
        ):
            victim = policy.evict()
            if victim is None:
                break
            self._bytes -= victim[1].size
            self.counters.evictions += 1

    def _reclaim(self, now: float, budget: int) -> None:
        """Handle up to ``budget`` expiry records due by ``now``, earliest first.

        Each live entry with an expiry has at least one record at or before it (an overwrite that moves the expiry
        later adds none: the earlier record stands for it). A due record drops its entry if that has expired, and
        is moved to the entry's new time if the entry was rewritten to live longer.
        """
        expiry = self._expiry
        for due_at, key in expiry.due(now, budget):
            env = self._policy.peek(key)
            if env is None:  # deleted or evicted since
                continue
            gc_at = env.gc_at()
            if gc_at is None:  # rewritten without expiry
                continue
            if gc_at <= now:
                self._remove(key)
                self.counters.expirations += 1
            elif gc_at > due_at:
                expiry.add(key, gc_at)

    def _valid(self, key: str, due_at: float) -> bool:
        """Whether the expiry record ``(due_at, key)`` still stands for its entry (due at or before its expiry)."""
        env = self._policy.peek(key)
        if env is None:
            return False
        gc_at = env.gc_at()
        return gc_at is not None and due_at <= gc_at
