"""A count-min sketch of 4-bit counters with a doorkeeper: the frequency history of W-TinyLFU.

Pure and in-process only: keys arrive as ``hash(key)`` (randomised per process for ``str``, which is fine for an
estimate that never leaves the process) and are mixed with a per-instance seed by one 64-bit multiplication
(Fibonacci hashing): the high bits pick the word, middle bits the counters, low bits the doorkeeper's bit.

Layout (Caffeine's block idea, scaled to what is cheap in Python): the table is an ``array("Q")`` of 64-bit words,
one word per entry of capacity (rounded up to a power of two), each word 4 lanes of 4 counters of 4 bits. A key
picks one word, and in each lane one counter: its 4 counters are the 4 rows of the count-min sketch, read and
updated with one word load and a few bit operations (saturated counters are masked out of the increment in one
step). Counters saturate at 15.

As in Caffeine's ``FrequencySketch``, the history ages: when the number of recorded samples reaches ten times the
capacity, every counter is halved (one ``bytes.translate`` over the table) and the sample count with it. As in the
TinyLFU paper, a doorkeeper (a one-hash Bloom filter of 16 bits per entry in a ``bytearray``, cleared at each
halving) absorbs a key's first sighting, so the many keys seen once never reach the counters. A key's
frequency is its counters' minimum plus one if the doorkeeper holds it: ``min(n, 16)`` for a key seen ``n`` times
since the last halving, barring collisions.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["FrequencySketch"]

_M64 = (1 << 64) - 1
_MUL = 0x9E3779B97F4A7C15
_SAMPLE_FACTOR = 10
_MIN_CAPACITY = 16
# Halving two packed 4-bit counters at once: shift the byte right, drop the bit that crossed the nibble boundary.
_HALVE = bytes(((b >> 1) & 0x77) for b in range(256))


def _lanes(sel: int) -> tuple[int, int, int, int]:
    """Bit offsets of the counter each of the 4 lanes (16 bits each) gives the key, from 8 bits of its hash."""
    return ((sel & 3) << 2, 16 + ((sel >> 2 & 3) << 2), 32 + ((sel >> 4 & 3) << 2), 48 + ((sel >> 6 & 3) << 2))


_SHIFTS = tuple(_lanes(sel) for sel in range(256))
_INCREMENTS = tuple((1 << a) | (1 << b) | (1 << c) | (1 << d) for a, b, c, d in _SHIFTS)


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


class FrequencySketch:
    """Approximate access counts of recently seen keys (4 bits each, aged by periodic halving).

    Args:
        capacity: the number of entries the cache holds; sizes the table (one 64-bit word of 16 counters per
            entry, rounded up to a power of two, plus 2 bytes of doorkeeper) and the sample period (10 x capacity).
        seed: mixed into every hash, so two sketches (or two processes) collide on different keys.
    """

    __slots__ = ("_door", "_door_mask", "_seed", "_shift", "_table", "capacity", "sample_size", "samples")

    def __init__(self, capacity: int = _MIN_CAPACITY, *, seed: int = 0) -> None:
        self._seed = ((seed ^ 0x5851F42D4C957F2D) * _MUL) & _M64
        self.capacity = 0
        self.sample_size = 0
        self.samples = 0
        self._table = array("Q")
        self._door = bytearray()
        self._shift = 64
        self._door_mask = 0
        self._allocate(max(_MIN_CAPACITY, capacity))

    def _allocate(self, capacity: int) -> None:
        size = _pow2_at_least(capacity)
        self.capacity = capacity
        self.sample_size = _SAMPLE_FACTOR * capacity
        self.samples = 0
        self._table = array("Q", bytes(8 * size))
        self._shift = 65 - size.bit_length()  # h >> shift: the top log2(size) bits
        self._door = bytearray(2 * size)  # 16 bits per entry
        self._door_mask = 16 * size - 1

    def ensure_capacity(self, capacity: int) -> None:
        """Grow for a larger cache: a new table (the history restarts) only when the power of two changes.

        A smaller or equal capacity keeps the table and only adjusts the sample period.
        """
        capacity = max(_MIN_CAPACITY, capacity)
        if _pow2_at_least(capacity) > len(self._table):
            self._allocate(capacity)
        else:
            self.capacity = capacity
            self.sample_size = _SAMPLE_FACTOR * capacity

    def frequency(self, key_hash: int) -> int:
        """The estimated number of times ``key_hash`` was seen since the last halving, 0 to 16."""
        h = ((key_hash ^ self._seed) * _MUL) & _M64
        v = self._table[h >> self._shift]
        a, b, c, d = _SHIFTS[(h >> 24) & 255]
        f = (v >> a) & 15
        x = (v >> b) & 15
        if x < f:  # noqa: PLR1730 - comparisons are cheaper than a call to min()
            f = x
        x = (v >> c) & 15
        if x < f:  # noqa: PLR1730
            f = x
        x = (v >> d) & 15
        if x < f:  # noqa: PLR1730
            f = x
        j = h & self._door_mask
        if self._door[j >> 3] & (1 << (j & 7)):
            f += 1
        return f

    def increment(self, key_hash: int) -> None:
        """Record one sighting of ``key_hash``: the doorkeeper takes the first, the counters the rest."""
        h = ((key_hash ^ self._seed) * _MUL) & _M64
        j = h & self._door_mask
        bit = 1 << (j & 7)
        j >>= 3
        door = self._door
        x = door[j]
        if not x & bit:
            door[j] = x | bit
        else:
            table = self._table
            i = h >> self._shift
            v = table[i]
            inc = _INCREMENTS[(h >> 24) & 255]
            inc ^= v & (v >> 1) & (v >> 2) & (v >> 3) & inc  # drop the counters already at 15
            if not inc:
                return
            table[i] = v + inc
        self.samples += 1
        if self.samples >= self.sample_size:
            self.halve()

    def increment_all(self, key_hashes: Iterable[int]) -> None:
        """Record one sighting of each hash, in order (one call for a drained batch of reads)."""
        seed, table, shift, door, door_mask = self._seed, self._table, self._shift, self._door, self._door_mask
        increments, samples, limit = _INCREMENTS, self.samples, self.sample_size
        for key_hash in key_hashes:
            h = ((key_hash ^ seed) * _MUL) & _M64
            j = h & door_mask
            bit = 1 << (j & 7)
            j >>= 3
            x = door[j]
            if not x & bit:
                door[j] = x | bit
            else:
                i = h >> shift
                v = table[i]
                inc = increments[(h >> 24) & 255]
                inc ^= v & (v >> 1) & (v >> 2) & (v >> 3) & inc  # drop the counters already at 15
                if not inc:
                    continue
                table[i] = v + inc
            samples += 1
            if samples >= limit:
                self.samples = samples
                self.halve()
                samples, table, door = self.samples, self._table, self._door
        self.samples = samples

    def halve(self) -> None:
        """Age the history: halve every counter and the sample count, clear the doorkeeper."""
        table = array("Q")
        table.frombytes(self._table.tobytes().translate(_HALVE))
        self._table = table
        self._door = bytearray(len(self._door))
        self.samples //= 2

    def clear(self) -> None:
        """Forget everything."""
        self._table = array("Q", bytes(8 * len(self._table)))
        self._door = bytearray(len(self._door))
        self.samples = 0
