"""A count-min sketch of 4-bit counters: the frequency history of W-TinyLFU.

Pure and in-process only: keys arrive as ``hash(key)`` (randomised per process for ``str``, which is fine for an
estimate that never leaves the process) and are mixed with a per-instance seed by one 64-bit multiplication
(Fibonacci hashing): the high bits pick a block, middle bits the counters.

Layout (Caffeine's ``FrequencySketch`` blocks, scaled to what is cheap in Python): the table is an ``array("Q")``
of 64-bit words, one word (16 counters of 4 bits) per entry of capacity, rounded up to a power of two, grouped in
blocks of 4 words. A key picks one block, and in each of the block's 4 words one of its 16 counters: those 4
counters are the 4 rows of the count-min sketch, each read with one word load and a shift. Counters saturate
at 15.

Why blocks of 4 words rather than all 4 counters in one word (one load instead of 4, which this module did
before): the keys that share a key's word are the only ones that can inflate its estimate, so with one word per
key the 4 rows are crowded by the same few neighbours and the minimum over them removes little of the error. On
the ``hitrate`` suite's Zipf traces that cost W-TinyLFU 0.3-1 point of hit ratio; a block of 4 words draws the
neighbours of each row from 4 times as many keys (Caffeine's blocks are 8 words, for 64-byte cache lines; 4 is
as accurate on those traces).

As in Caffeine, the history ages: when the number of recorded samples (increments that moved at least one
counter) reaches ten times the capacity, every counter is halved (one ``bytes.translate`` over the table) and the
sample count with it. There is no doorkeeper (Caffeine has none either): a key's frequency is its counters'
minimum, ``min(n, 15)`` for a key seen ``n`` times since the last halving, barring collisions. (A one-hash
doorkeeper in front of the counters, which this module had, cost 0.2-0.5 points on the Zipf traces: its false
positives and its clearing at each halving blur the low counts that admission compares.)
"""

from __future__ import annotations

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
# 8 bits of the hash -> the bit offsets (and increments) of 2 rows' counters, each one of a word's 16 nibbles.
# The table is a bytearray (each byte two counters) read in blocks of 32 bytes, 8 per row: 8 bits of the hash ->
# for 2 rows, the byte (offset in the block) and the bit offset of the counter in it, and the increment.
_PAIRS = tuple(
    (
        (s & 15) >> 1,
        (s & 1) << 2,
        1 << ((s & 1) << 2),
        8 + ((s >> 4) >> 1),
        ((s >> 4) & 1) << 2,
        1 << (((s >> 4) & 1) << 2),
    )
    for s in range(256)
)


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


class FrequencySketch:
    """Approximate access counts of recently seen keys (4 bits each, aged by periodic halving).

    Args:
        capacity: the number of entries the cache holds; sizes the table (16 counters, 8 bytes, per entry,
            rounded up to a power of two) and the sample period (10 x capacity).
        seed: mixed into every hash, so two sketches (or two processes) collide on different keys.
    """

    __slots__ = ("_seed", "_shift", "_table", "capacity", "sample_size", "samples")

    def __init__(self, capacity: int = _MIN_CAPACITY, *, seed: int = 0) -> None:
        self._seed = ((seed ^ 0x5851F42D4C957F2D) * _MUL) & _M64
        self.capacity = 0
        self.sample_size = 0
        self.samples = 0
        self._table = bytearray()
        self._shift = 64
        self._allocate(max(_MIN_CAPACITY, capacity))

    def _allocate(self, capacity: int) -> None:
        size = _pow2_at_least(capacity)  # entries, at least 16: 8 bytes each, at least 4 blocks of 32 bytes
        self.capacity = capacity
        self.sample_size = _SAMPLE_FACTOR * capacity
        self.samples = 0
        self._table = bytearray(8 * size)
        self._shift = 67 - size.bit_length()  # h >> shift: the top log2(size / 4) bits, the block

    def ensure_capacity(self, capacity: int) -> None:
        """Grow for a larger cache, keeping the history; a smaller or equal capacity only sets the sample period.

        A larger power of two multiplies the table by ``f``: a key's block index gains low bits, so its new
        block is one of the ``f`` that take the place of its old one, at the same offsets inside. Copying every
        old block into those ``f`` gives every key the estimate it had (collisions included, until halving
        thins them), so a cache that sizes its sketch as it fills loses nothing by it.
        """
        capacity = max(_MIN_CAPACITY, capacity)
        size = 8 * _pow2_at_least(capacity)
        old = self._table
        if size > len(old):
            f = size // len(old)
            self._table = bytearray(b"".join(old[i : i + 32] * f for i in range(0, len(old), 32)))
            self._shift = 67 - (size // 8).bit_length()
        self.capacity = capacity
        self.sample_size = _SAMPLE_FACTOR * capacity

    def frequency(self, key_hash: int) -> int:
        """The estimated number of times ``key_hash`` was seen since the last halving, 0 to 15."""
        h = ((key_hash ^ self._seed) * _MUL) & _M64
        t = self._table
        i = (h >> self._shift) << 5
        a, sa, _, b, sb, _ = _PAIRS[(h >> 24) & 255]
        f = (t[i + a] >> sa) & 15
        x = (t[i + b] >> sb) & 15
        if x < f:  # noqa: PLR1730 - comparisons are cheaper than a call to min()
            f = x
        i += 16
        a, sa, _, b, sb, _ = _PAIRS[(h >> 32) & 255]
        x = (t[i + a] >> sa) & 15
        if x < f:  # noqa: PLR1730
            f = x
        x = (t[i + b] >> sb) & 15
        if x < f:  # noqa: PLR1730
            f = x
        return f

    def increment(self, key_hash: int) -> None:
        """Record one sighting of ``key_hash`` in its 4 counters (those at 15 stay; none moved: not a sample)."""
        self.increment_all((key_hash,))

    def increment_all(self, key_hashes: Iterable[int]) -> None:
        """Record one sighting of each hash, in order (one call for a drained batch of reads)."""
        seed, t, shift, pairs = self._seed, self._table, self._shift, _PAIRS
        samples, limit = self.samples, self.sample_size
        for key_hash in key_hashes:
            h = ((key_hash ^ seed) * _MUL) & _M64
            i = (h >> shift) << 5
            added = False
            a, sa, ia, b, sb, ib = pairs[(h >> 24) & 255]
            a += i
            v = t[a]
            if ~v >> sa & 15:
                t[a] = v + ia
                added = True
            b += i
            v = t[b]
            if ~v >> sb & 15:
                t[b] = v + ib
                added = True
            i += 16
            a, sa, ia, b, sb, ib = pairs[(h >> 32) & 255]
            a += i
            v = t[a]
            if ~v >> sa & 15:
                t[a] = v + ia
                added = True
            b += i
            v = t[b]
            if ~v >> sb & 15:
                t[b] = v + ib
                added = True
            if added:
                samples += 1
                if samples >= limit:
                    self.samples = samples
                    self.halve()
                    samples, t = self.samples, self._table
        self.samples = samples

    def halve(self) -> None:
        """Age the history: halve every counter and the sample count."""
        self._table = self._table.translate(_HALVE)
        self.samples //= 2

    def clear(self) -> None:
        """Forget everything."""
        self._table = bytearray(len(self._table))
        self.samples = 0
