"""The in-process tier's expiry records (pure): when each entry may be dropped, earliest first, compacted gradually.

A record is ``(time, key)``. While times never decrease in write order (one TTL for every entry, the usual case)
records go to the back of two parallel deques of times and keys (two references, about 16 bytes, the time being
the entry's own float); a record earlier than the last one goes to a min-heap of tuples instead (about 64 bytes).

Records are never removed when their entry is overwritten, deleted or evicted, and an overwrite that moves an
expiry later adds no record: the store checks, when a record comes due, whether the entry is gone (the record is
dropped), expired (dropped with it) or living longer (the record moves to the new time). So records can outnumber
the entries (a cache evicting at capacity before its entries expire, keys deleted and written again, expiries
moved earlier). When they reach twice the entries (plus a constant), the queue compacts: it walks every record
once, keeping one valid record per key, a few per write (:meth:`ExpiryQueue.compact`) instead of all at once, which
held the store's lock for ~100 ms at 100k entries:

- the deque's records are moved from the front of the deque (``B``) to the back of a second one (``A``) in order,
  so ``A`` then ``B`` stay one sorted sequence; new records go to ``B``'s back meanwhile; at the end ``A`` is put
  back in front of ``B`` (one C-level ``extendleft``);
- the heap's records are popped from the old heap (earliest first) and pushed to a new one if valid; new records
  go to the new heap meanwhile.

:meth:`due` always pops the earliest record of all four places, so reclaiming works unchanged during a compaction.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ExpiryQueue"]

_SLACK = 1024  # records beyond twice the entries before a compaction starts


class ExpiryQueue:
    """Expiry records of a store's entries: :meth:`add` one per write, :meth:`due` the earliest, :meth:`compact`."""

    __slots__ = ("_a_keys", "_a_times", "_heap", "_kept", "_keys", "_old_heap", "_scan", "_times")

    def __init__(self) -> None:
        self._times: deque[float] = deque()  # B: where new in-order records go
        self._keys: deque[str] = deque()
        self._a_times: deque[float] = deque()  # A: kept records of the compaction under way, all before B's
        self._a_keys: deque[str] = deque()
        self._heap: list[tuple[float, str]] = []  # out-of-order records
        self._old_heap: list[tuple[float, str]] = []  # the heap being compacted into _heap
        self._scan = 0  # records at B's front the compaction has still to examine
        self._kept: set[str] = set()  # keys the compaction under way kept a record of: one is enough

    def __len__(self) -> int:
        return len(self._times) + len(self._a_times) + len(self._heap) + len(self._old_heap)

    @property
    def compacting(self) -> bool:
        """Whether a compaction is under way."""
        return bool(self._scan or self._old_heap or self._a_times)

    def add(self, key: str, time: float) -> None:
        """Record that ``key``'s entry may be dropped from ``time`` on."""
        times = self._times
        last = times[-1] if times else (self._a_times[-1] if self._a_times else None)
        if last is None or time >= last:
            times.append(time)
            self._keys.append(key)
        else:
            heapq.heappush(self._heap, (time, key))

    def due(self, now: float, budget: int) -> list[tuple[float, str]]:
        """Pop up to ``budget`` records due by ``now``, earliest first (the caller checks they are still valid)."""
        out: list[tuple[float, str]] = []
        while len(out) < budget:
            # the deque side's earliest: A's front, else B's front
            dq_t, dq_k = (self._a_times, self._a_keys) if self._a_times else (self._times, self._keys)
            heap = self._heap
            if self._old_heap and (not heap or self._old_heap[0] < heap[0]):
                heap = self._old_heap
            if dq_t and (not heap or dq_t[0] <= heap[0][0]):
                if dq_t[0] > now:
                    break
                if dq_t is self._times and self._scan:
                    self._scan -= 1  # the compaction will not see this one
                out.append((dq_t.popleft(), dq_k.popleft()))
            elif heap and heap[0][0] <= now:
                out.append(heapq.heappop(heap))
            else:
                break
        return out

    def needs_compaction(self, entries: int) -> bool:
        """Whether the records outnumber ``entries`` enough to start compacting (and none is under way)."""
        return len(self) > 2 * entries + _SLACK and not self.compacting

    def start_compaction(self) -> None:
        """Begin a compaction (:meth:`compact` carries it out a few records at a time)."""
        self._scan = len(self._times)
        self._old_heap, self._heap = self._heap, []

    def compact(self, valid: Callable[[str, float], bool], budget: int) -> None:
        """Examine up to ``budget`` records of the compaction under way, keeping those ``valid(key, time)``.

        One record per key is kept (the first valid one examined): the store needs one record at or before an
        entry's expiry, which re-arms itself when it comes due early.
        """
        times, keys = self._times, self._keys
        while budget and self._scan:
            budget -= 1
            self._scan -= 1
            t, k = times.popleft(), keys.popleft()
            if k not in self._kept and valid(k, t):
                self._kept.add(k)
                self._a_times.append(t)
                self._a_keys.append(k)
        old = self._old_heap
        while budget and old:
            budget -= 1
            t, k = heapq.heappop(old)
            if k not in self._kept and valid(k, t):
                self._kept.add(k)
                heapq.heappush(self._heap, (t, k))
        if not self._scan and not old:  # done: A goes back in front of B
            self._kept.clear()
            if self._a_times:
                times.extendleft(reversed(self._a_times))
                keys.extendleft(reversed(self._a_keys))
                self._a_times.clear()
                self._a_keys.clear()

    def records(self) -> list[tuple[float, str]]:
        """Every record, earliest first (tests and inspection; O(n log n))."""
        in_order = [*zip(self._a_times, self._a_keys, strict=True), *zip(self._times, self._keys, strict=True)]
        return sorted([*in_order, *self._heap, *self._old_heap])

    def clear(self) -> None:
        """Drop every record."""
        self._times.clear()
        self._keys.clear()
        self._a_times.clear()
        self._a_keys.clear()
        self._heap.clear()
        self._old_heap.clear()
        self._kept.clear()
        self._scan = 0
