"""A count-min sketch of 4-bit counters with a doorkeeper: the frequency history of W-TinyLFU.

Pure and in-process only: keys arrive as ``hash(key)`` (randomised per process for ``str``, which is fine for an
estimate that never leaves the process), are mixed with a per-instance seed by a 64-bit finalizer (splitmix64) and
spread over four counters of one table by double hashing. Counters are 4 bits, two to a byte of a ``bytearray``,
and saturate at 15.

As in Caffeine's ``FrequencySketch``, the history ages: when the number of recorded samples reaches ten times the
capacity, every counter is halved (one ``bytes.translate`` over the table) and the sample count with it. As in the
TinyLFU paper, a doorkeeper (a small Bloom filter, cleared at each halving) absorbs a key's first sighting, so the
many keys seen once never reach the counters. A key's frequency is its counters' minimum plus one if the
doorkeeper holds it: ``min(n, 16)`` for a key seen ``n`` times since the last halving, barring collisions.
"""

from __future__ import annotations

__all__ = ["FrequencySketch"]

_M64 = (1 << 64) - 1
_SAMPLE_FACTOR = 10
_MIN_CAPACITY = 16
# Halving two packed 4-bit counters at once: shift the byte right, drop the bit that crossed the nibble boundary.
_HALVE = bytes(((b >> 1) & 0x77) for b in range(256))


def _mix(x: int) -> int:
    """The splitmix64 finalizer: a stable, well-spread 64-bit mixing of ``x``."""
    x &= _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


class FrequencySketch:
    """Approximate access counts of recently seen keys (4 bits each, aged by periodic halving).

    Args:
        capacity: the number of entries the cache holds; sizes the table (16 counters per entry, rounded up to a
            power of two: 8 bytes per entry, plus 2 bytes of doorkeeper) and the sample period (10 x capacity).
        seed: mixed into every hash, so two sketches (or two processes) collide on different keys.
    """

    __slots__ = ("_door", "_door_mask", "_mask", "_seed", "_table", "capacity", "sample_size", "samples")

    def __init__(self, capacity: int = _MIN_CAPACITY, *, seed: int = 0) -> None:
        self._seed = _mix(seed ^ 0x9E3779B97F4A7C15)
        self.capacity = 0
        self.sample_size = 0
        self.samples = 0
        self._table = bytearray()
        self._door = bytearray()
        self._mask = 0
        self._door_mask = 0
        self._allocate(max(_MIN_CAPACITY, capacity))

    def _allocate(self, capacity: int) -> None:
        size = _pow2_at_least(capacity)
        self.capacity = capacity
        self.sample_size = _SAMPLE_FACTOR * capacity
        self.samples = 0
        self._table = bytearray(8 * size)  # 16 counters per entry
        self._mask = 16 * size - 1
        self._door = bytearray(2 * size)  # 16 bits per entry
        self._door_mask = 16 * size - 1

    def ensure_capacity(self, capacity: int) -> None:
        """Grow for a larger cache: a new table (the history restarts) only when the power of two changes.

        A smaller or equal capacity keeps the table and only adjusts the sample period.
        """
        capacity = max(_MIN_CAPACITY, capacity)
        if _pow2_at_least(capacity) * 8 > len(self._table):
            self._allocate(capacity)
        else:
            self.capacity = capacity
            self.sample_size = _SAMPLE_FACTOR * capacity

    def _hash(self, key_hash: int) -> int:
        return _mix(key_hash ^ self._seed)

    def frequency(self, key_hash: int) -> int:
        """The estimated number of times ``key_hash`` was seen since the last halving, 0 to 16."""
        h = self._hash(key_hash)
        t, mask = self._table, self._mask
        step = (h >> 32) | 1
        j = h & mask
        low = (t[j >> 1] >> ((j & 1) << 2)) & 15
        for _ in range(3):
            if not low:
                break
            j = (j + step) & mask
            c = (t[j >> 1] >> ((j & 1) << 2)) & 15
            if c < low:  # noqa: PLR1730 - a comparison is cheaper than a call to min()
                low = c
        door, dmask = self._door, self._door_mask
        d1, d2 = (h >> 7) & dmask, (h >> 37) & dmask
        if door[d1 >> 3] & (1 << (d1 & 7)) and door[d2 >> 3] & (1 << (d2 & 7)):
            low += 1
        return low

    def increment(self, key_hash: int) -> None:
        """Record one sighting of ``key_hash``: the doorkeeper takes the first, the counters the rest."""
        h = self._hash(key_hash)
        door, dmask = self._door, self._door_mask
        d1, d2 = (h >> 7) & dmask, (h >> 37) & dmask
        b1, b2 = 1 << (d1 & 7), 1 << (d2 & 7)
        if not (door[d1 >> 3] & b1 and door[d2 >> 3] & b2):
            door[d1 >> 3] |= b1
            door[d2 >> 3] |= b2
            self._sampled()
            return
        t, mask = self._table, self._mask
        step = (h >> 32) | 1
        j = h & mask
        added = False
        for _ in range(4):
            i, s = j >> 1, (j & 1) << 2
            v = t[i]
            if (v >> s) & 15 != 15:
                t[i] = v + (1 << s)
                added = True
            j = (j + step) & mask
        if added:
            self._sampled()

    def _sampled(self) -> None:
        self.samples += 1
        if self.samples >= self.sample_size:
            self.halve()

    def halve(self) -> None:
        """Age the history: halve every counter and the sample count, clear the doorkeeper."""
        self._table = self._table.translate(_HALVE)
        self._door = bytearray(len(self._door))
        self.samples //= 2

    def clear(self) -> None:
        """Forget everything."""
        self._table = bytearray(len(self._table))
        self._door = bytearray(len(self._door))
        self.samples = 0
