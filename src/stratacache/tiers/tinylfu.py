"""W-TinyLFU for the in-process tier: an LRU window, a segmented LRU main space, admission by frequency.

The design follows Caffeine's ``BoundedLocalCache``:

- New entries enter the **window** (LRU). When it outgrows its share, its oldest entry moves to the recent end of
  the **probation** segment. When the store asks for a victim, the *candidate* (probation's most recent entry, the
  one just moved there) competes with probation's least recent entry by
  :class:`~stratacache.core.sketch.FrequencySketch` estimate; the less frequent one is evicted (Caffeine's
  ``evictFromMain``). A candidate that loses is gone; one that wins stays in probation.
  A candidate that only ties a warm victim (frequency > 5) is still admitted with probability 1/128, so an attacker
  who floods the sketch cannot pin the main space.
- An access in probation promotes the entry to the **protected** segment (80% of the main space); protected
  overflow is demoted back to probation's recent end.
- The window's share is tuned by a hill climber after Caffeine's (a decaying step of 6.25% of the capacity, in
  the direction that improved the last sample period of 10 x capacity requests, restarted on a 5-point move), with
  three changes that make it hold still on stationary traffic and move fast when recency wins:

  * **A shadow LRU as a control variate.** A key-only LRU of the same capacity (of a hash-sampled 1/2^k of the
    keys, SHARDS-style, above 4,096 entries) replays the same requests. The climber compares periods by the *gap*
    between this policy's hit rate and LRU's on the same requests, not by the raw hit rate, so a phase change of
    the traffic, which moves both, does not read as the effect of the last step.
  * **A noise gate.** A change of the gap smaller than one standard error (``1/sqrt(n)`` for ``n`` sampled
    requests) holds the window where it is instead of walking on noise (on Zipf traffic the raw climber wanders
    from the best, small window to 20-40% and loses 1-2 points).
  * **Towards LRU when LRU wins.** When the shadow LRU beats the policy over a period by more than the paired
    standard error of the gap (``sqrt(d)/n``, for ``d`` requests on which exactly one of the two hit), or by
    three of them at any point after 256 requests (a sequential check, so a moving hot spot is noticed within a
    few hundred requests rather than 10 x capacity), the window jumps 3/4 of the way to the whole capacity: at
    100% the window *is* an LRU, so the policy cannot lose to LRU for long. A window held above 1% probes a step
    down after 2 quiet periods (4, 8... after a probe that LRU punished, whether at the period's end or by the
    sequential check within it; at once again after a harmless one), so a return to frequency-biased traffic
    shrinks it back.

  A window that grows takes the main space's least recent entries (probation's, then protected's) at its own
  least recent end, as Caffeine's ``increaseWindow`` moves them: at 100% the main space is empty and the policy
  evicts exactly as an LRU would (left in the main space, they were compared by frequency at every eviction, and
  on a moving hot spot that cost up to 0.2 points against LRU after each jump).

  The shadow costs one ``OrderedDict`` operation per (sampled) request, done when the read buffer is drained.

Reads are lock-free and cheap: ``get`` is one dict lookup and an append of the key to a bounded ``deque`` (the
read buffer, which drops its oldest records when full, as Caffeine's lossy read buffer drops: more reads than
``read_buffer`` between two writes are sampled, the most recent kept). Every other method runs under the store's
lock; ``put`` and ``evict`` first drain the buffer, so sketch increments and segment reordering happen there, in
batches, on the writer's time.

Capacity: the store keeps the count and byte bounds and calls ``evict`` while over them; this policy only orders
entries and picks victims. It sizes its segments and its sketch from a capacity estimate: ``max_entries`` when
given (``make_policy("tinylfu", max_entries)``, as ``MemoryStore`` passes its count bound), otherwise learned. Until
the first eviction the estimate is the number of entries held; from then on, it is the number of entries left
when the store stops evicting (so a store bounded only by bytes gets the entry count its byte budget holds, and
the estimate follows the entries' sizes). Above 4,096 entries the sketch is sized for the entries actually held,
up to the estimate (a cache of 100k entries under a bound of 200k pays for a table of 128k, not 256k: 8 bytes an
entry instead of 16); growing keeps every estimate (``FrequencySketch.ensure_capacity``). Smaller caches get
their whole table at once: a table that starts tiny saturates with the one-hit keys of the warm-up, and its
collisions, kept through growth, cost the ``hitrate`` traces 0.1-0.5 points.
"""

from __future__ import annotations

import itertools
import random
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

from stratacache.core.sketch import FrequencySketch

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from stratacache.core.envelope import Envelope

__all__ = ["TinyLFUPolicy"]

_PROTECTED_SHARE = 0.8  # of the main space
_HASHDOS_THRESHOLD = 6  # a candidate at least this frequent may win a tie at random (1 in 128)
_STEP = 0.0625  # hill climber: initial step, as a share of the capacity
_STEP_DECAY = 0.98
_RESTART_THRESHOLD = 0.05
_NOISE_Z = 1.0  # a change of the gap (this policy's hit rate - the shadow LRU's) under z standard errors is noise
_LRU_Z = 1.0  # at a period's end, LRU ahead by z standard errors: grow the window towards LRU
_EARLY_Z = 3.0  # within a period: LRU ahead by z standard errors (after _EARLY_MIN requests) grows it at once
_EARLY_MIN = 256
_JUMP = 0.75  # growing towards LRU covers this share of the distance to a window of the whole capacity
_PROBE_FIRST = 2  # quiet periods above the initial window before a step down is tried (doubles if punished)
_PROBE_MAX = 1024
_PROBE_FLOOR = 0.01  # probes do not take the window below this share (Caffeine's initial window)
_SHADOW_MAX = 4096  # shadow LRU entries before the shadow samples keys by hash
_SKETCH_START = 4096  # entries the sketch is first sized for (32 KB), when the capacity is larger
_MUL = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1
_ABSENT: Any = object()


class TinyLFUPolicy:
    """Adaptive W-TinyLFU ordering for :class:`~stratacache.tiers.memory.MemoryStore` (see the module docstring).

    Args:
        max_entries: the capacity hint (segments and sketch are sized from it); ``None`` learns it from evictions.
        window: the initial share of the admission window, 0 to 1 (Caffeine starts at 1%).
        adaptive: tune the window by hill climbing; ``False`` keeps it fixed.
        seed: seeds the sketch's hashing and the admission tie-break (``None``: random per instance).
        hasher: ``hash`` by default; tests pass a stable one so hit ratios do not depend on ``PYTHONHASHSEED``.
        read_buffer: how many reads are recorded between two writes before the oldest records are dropped.
    """

    __slots__ = (
        "_buf",
        "_cap",
        "_dis",
        "_full",
        "_hash",
        "_hint",
        "_hits",
        "_misses",
        "_n_s",
        "_own_s",
        "_prev_rate",
        "_probation",
        "_probe_after",
        "_probing",
        "_protected",
        "_protected_max",
        "_quiet",
        "_record",
        "_rng",
        "_sh_bits",
        "_sh_cap",
        "_sh_hits",
        "_shadow",
        "_sketch",
        "_step",
        "_wf",
        "_wf0",
        "_window",
        "_window_max",
        "adaptive",
    )

    def __init__(
        self,
        max_entries: int | None = None,
        *,
        window: float = 0.01,
        adaptive: bool = True,
        seed: int | None = None,
        hasher: Callable[[str], int] = hash,
        read_buffer: int = 1024,
    ) -> None:
        if max_entries is not None and max_entries < 1:
            raise ValueError("max_entries must be positive")
        if not 0.0 <= window <= 1.0:
            raise ValueError("window must be between 0 and 1")
        rng = random.Random(seed)  # noqa: S311 - admission tie-breaks, not secrets
        self._rng = rng
        self._hash = hasher
        self._hint = max_entries
        self._cap = max_entries or 1
        # sized for at most _SKETCH_START entries, then grows with the entries held (see put)
        self._sketch = FrequencySketch(min(self._cap, _SKETCH_START), seed=rng.getrandbits(64))
        # the segments hold the entries: no key map beside them (38 bytes an entry less; see get)
        self._window: OrderedDict[str, Envelope[Any]] = OrderedDict()
        self._probation: OrderedDict[str, Envelope[Any]] = OrderedDict()
        self._protected: OrderedDict[str, Envelope[Any]] = OrderedDict()
        self._buf: deque[str] = deque(maxlen=read_buffer)
        self._record = self._buf.append
        self._full = False  # True once the store has asked for a victim
        self.adaptive = adaptive
        self._wf = window
        self._wf0 = min(window, _PROBE_FLOOR)
        self._window_max = 1
        self._protected_max = 0
        self._hits = 0
        self._misses = 0
        self._prev_rate = 0.0  # the previous period's gap to the shadow LRU
        self._step = -_STEP
        # the shadow LRU (keys only) and this period's sampled requests, own hits and LRU hits among them
        self._shadow: OrderedDict[str, None] = OrderedDict()
        self._sh_cap = 1
        self._sh_bits = 0
        self._n_s = 0
        self._own_s = 0
        self._sh_hits = 0
        self._dis = 0  # sampled requests where exactly one of this policy and the shadow hit
        self._quiet = 0
        self._probe_after = _PROBE_FIRST
        self._probing = False
        self._limits()

    # --- the protocol ---

    def get(self, key: str) -> Envelope[Any] | None:
        """Return the entry and record the access in the read buffer (lock-free).

        The key is looked up in the segments in turn (protected first: in steady state the hot entries are
        there). A writer moving the key between segments meanwhile can make a lock-free lookup miss it: a
        caller that must not see such a miss repeats it under the store's lock (``MemoryStore.get`` does, as
        :attr:`exact_lookups` is ``False``).
        """
        env = self._protected.get(key)
        if env is None:
            env = self._probation.get(key)
            if env is None:
                env = self._window.get(key)
                if env is None:
                    return None
        self._record(key)
        return env

    def peek(self, key: str) -> Envelope[Any] | None:
        """Return the entry without recording an access (lock-free: see :meth:`get` about misses)."""
        env = self._protected.get(key)
        if env is None:
            env = self._probation.get(key)
            if env is None:
                env = self._window.get(key)
        return env

    exact_lookups = False
    """A lock-free miss may be wrong while a writer moves the key between segments (see :meth:`get`)."""

    def hit_path(self) -> tuple[tuple[Callable[[str], Envelope[Any] | None], ...], Callable[[str], object]]:
        """``((protected.get, probation.get, window.get), read buffer append)``: :meth:`get` in C calls.

        The segments and ``_buf`` are cleared, never replaced, so the bound methods stay valid.
        """
        return (self._protected.get, self._probation.get, self._window.get), self._record

    def put(self, key: str, env: Envelope[Any]) -> Envelope[Any] | None:
        """Insert into the window (or replace in place, counted as an access); return the replaced entry."""
        if self._buf:
            self._drain()
        window = self._window
        for seg in (self._protected, self._probation, window):
            old = seg.get(key)
            if old is not None:
                seg[key] = env  # the same position
                self._access(key)
                return old
        self._misses += 1
        h = self._hash(key)
        self._sketch.increment(h)
        window[key] = env
        n = len(self)
        if not self._full and n > self._cap:
            self._cap = n
            self._limits()
        sketch = self._sketch
        if sketch.capacity < self._cap and n > sketch.capacity:
            # Sized for the entries held, not the bound, until the cache fills (Caffeine sizes it lazily too):
            # a cache far from its max_entries does not pay for a table of that size. Growing keeps the history.
            sketch.ensure_capacity(min(self._cap, 1 << n.bit_length()))
        if len(window) > self._window_max:
            probation = self._probation
            while len(window) > self._window_max:
                k, v = window.popitem(last=False)
                probation[k] = v
        if self.adaptive:
            self._adapt_on_miss(key, h)
        return None

    def pop(self, key: str) -> Envelope[Any] | None:
        """Remove and return the entry."""
        env = self._window.pop(key, None)
        if env is None:
            env = self._probation.pop(key, None)
            if env is None:
                env = self._protected.pop(key, None)
                if env is None:
                    return None
        self._shadow.pop(key, None)  # gone from an LRU cache too
        return env

    def evict(self) -> tuple[str, Envelope[Any]] | None:
        """Remove and return the next victim: a candidate or a probation entry, whichever is less frequent."""
        if self._buf:
            self._drain()
        if not self._full:  # the climber's periods start when the cache is full (until then it is an LRU)
            self._full = True
            self._end_period()
        probation = self._probation
        if len(probation) >= 2:
            # the candidate (probation's newest, just out of the window) against probation's oldest
            victim = next(iter(probation))
            candidate = next(reversed(probation))
            sketch, h = self._sketch, self._hash
            cf = sketch.frequency(h(candidate))
            if cf <= sketch.frequency(h(victim)) and (cf < _HASHDOS_THRESHOLD or self._rng.getrandbits(7)):
                victim = candidate  # not more frequent, and not a warm tie that won the 1-in-128 draw
            env = probation.pop(victim)
        else:
            for seg in (probation, self._protected, self._window):
                if seg:
                    victim, env = seg.popitem(last=False)
                    break
            else:
                return None  # empty
        n = len(self) or 1
        if self._hint is not None:
            n = min(n, self._hint)
        if n != self._cap:
            self._cap = n
            self._limits()
        return victim, env

    def clear(self) -> None:
        """Drop every entry (the frequency history stays: it describes the traffic, not the contents)."""
        self._buf.clear()
        self._window.clear()
        self._probation.clear()
        self._protected.clear()
        self._shadow.clear()

    def keys(self) -> Iterator[str]:
        """A snapshot of the keys."""
        return iter([*self._window, *self._probation, *self._protected])

    def __len__(self) -> int:
        return len(self._window) + len(self._probation) + len(self._protected)

    # --- introspection (tests, simulation) ---

    @property
    def window_share(self) -> float:
        """The admission window's current share of the capacity (moved by the hill climber)."""
        return self._wf

    @property
    def capacity(self) -> int:
        """The capacity estimate the segments and the sketch are sized from."""
        return self._cap

    def segment_of(self, key: str) -> str | None:
        """``"window"``, ``"probation"``, ``"protected"``, or ``None`` if absent (pending reads are applied first)."""
        self._drain()
        for name, seg in (("window", self._window), ("probation", self._probation), ("protected", self._protected)):
            if key in seg:
                return name
        return None

    def frequency(self, key: str) -> int:
        """The sketch's estimate for ``key`` (pending reads are applied first)."""
        self._drain()
        return self._sketch.frequency(self._hash(key))

    # --- internals (store lock held) ---

    def _limits(self) -> None:
        cap = self._cap
        wmax = min(cap, max(1, round(self._wf * cap)))
        self._window_max = wmax
        self._protected_max = int(_PROTECTED_SHARE * (cap - wmax))
        bits = max(0, (cap - 1) // _SHADOW_MAX).bit_length()  # sample 1 key in 2^bits: at most _SHADOW_MAX entries
        if bits != self._sh_bits:
            self._sh_bits = bits
            self._shadow.clear()
        self._sh_cap = max(1, cap >> bits)

    def _drain(self) -> None:
        buf = self._buf
        n = len(buf)
        if not n:
            return
        # Only the drainer pops (under the store's lock), and appends never shorten the deque: n pops succeed.
        popleft = buf.popleft
        window, probation, protected = self._window, self._probation, self._protected
        keys = [key for key in [popleft() for _ in range(n)] if key in protected or key in probation or key in window]
        if not keys:
            return
        self._hits += len(keys)
        if self.adaptive:
            hashes = [self._hash(key) for key in keys]
            self._sketch.increment_all(hashes)
            self._shadow_hits(keys, hashes)
        else:
            self._sketch.increment_all(map(self._hash, keys))
        protected_max = self._protected_max
        for key in keys:
            if key in protected:
                protected.move_to_end(key)
            elif key in window:
                window.move_to_end(key)
            elif key in probation:
                protected[key] = probation[key]  # in, then out: a lock-free reader misses it less often
                del probation[key]
                if len(protected) > protected_max:
                    k, v = protected.popitem(last=False)
                    probation[k] = v

    def _access(self, key: str) -> None:
        self._sketch.increment(self._hash(key))
        if key in self._window:
            self._window.move_to_end(key)
        elif key in self._probation:
            probation, protected = self._probation, self._protected
            protected[key] = probation[key]
            del probation[key]
            while len(protected) > self._protected_max:
                k, v = protected.popitem(last=False)
                probation[k] = v
        elif key in self._protected:
            self._protected.move_to_end(key)

    def _adapt_on_miss(self, key: str, h: int) -> None:
        """Replay a miss on the shadow; end the period, or grow the window early if LRU is far ahead."""
        if not self._sh_bits or not ((h * _MUL) & _M64) >> (64 - self._sh_bits):
            self._shadow_access(key, hit=False)
        if not self._full:
            return
        if self._hits + self._misses >= self._sketch.sample_size:
            self._climb()
        elif self._n_s >= _EARLY_MIN and self._wf < 1.0:
            lead = self._sh_hits - self._own_s
            if lead > 0 and lead * lead > _EARLY_Z * _EARLY_Z * self._dis:
                self._grow_towards_lru()

    def _shadow_hits(self, keys: list[str], hashes: list[int]) -> None:
        """Replay drained hits (of the sampled keys) on the shadow."""
        shadow_access, bits = self._shadow_access, self._sh_bits
        if not bits:
            for key in keys:
                shadow_access(key, hit=True)
            return
        shift = 64 - bits
        for key, h in zip(keys, hashes, strict=True):
            if not ((h * _MUL) & _M64) >> shift:
                shadow_access(key, hit=True)

    def _shadow_access(self, key: str, *, hit: bool) -> None:
        """Replay one sampled request on the shadow LRU; count it, this policy's hit and the shadow's."""
        shadow = self._shadow
        self._n_s += 1
        if hit:
            self._own_s += 1
        if key in shadow:
            shadow.move_to_end(key)
            self._sh_hits += 1
            if not hit:
                self._dis += 1
        else:
            if hit:
                self._dis += 1
            shadow[key] = None
            while len(shadow) > self._sh_cap:
                shadow.popitem(last=False)

    def _end_period(self) -> None:
        self._hits = self._misses = self._n_s = self._own_s = self._sh_hits = self._dis = 0

    def _resize(self, wf: float) -> None:
        self._wf = min(1.0, max(0.0, wf))
        self._limits()
        window, protected, probation = self._window, self._protected, self._probation
        room = self._window_max - len(window)
        if room > 0 and (probation or protected):
            # A larger window takes the main space's least recent entries (Caffeine's increaseWindow), at its
            # own least recent end: at 100% the main space is empty and the window is exactly an LRU.
            moved = list(itertools.islice(probation, room))
            if len(moved) < room:
                moved += itertools.islice(protected, room - len(moved))
            for key in reversed(moved):
                env = probation.pop(key, _ABSENT)
                window[key] = protected.pop(key) if env is _ABSENT else env
                window.move_to_end(key, last=False)
        while len(protected) > self._protected_max:
            k, v = protected.popitem(last=False)
            probation[k] = v

    def _grow_towards_lru(self) -> None:
        """LRU is significantly ahead: move 3/4 of the way to a window of the whole capacity, keep climbing up."""
        if self._probing:  # the step down let LRU ahead: probe less often
            self._probing = False
            self._probe_after = min(2 * self._probe_after, _PROBE_MAX)
        self._quiet = 0
        self._step = _STEP
        self._prev_rate = 0.0
        self._end_period()
        self._resize(self._wf + max(_STEP, (1.0 - self._wf) * _JUMP))

    def _climb(self) -> None:
        """End a sample period: step the window by the gap to the shadow LRU (see the module docstring)."""
        n = self._n_s
        if not n:  # nothing sampled (a tiny period with a sampling shadow): wait for more
            return
        gap = (self._own_s - self._sh_hits) / n
        lru_noise = max(self._dis, 1) ** 0.5 / n  # the paired standard error of the gap
        noise = n**-0.5  # a bound on it, for the change between two periods
        change = gap - self._prev_rate
        self._prev_rate = gap
        self._end_period()
        probing, self._probing = self._probing, False
        if gap < -_LRU_Z * lru_noise:
            if probing:  # the step down let LRU ahead: probe less often
                self._probe_after = min(2 * self._probe_after, _PROBE_MAX)
            self._step = abs(self._step)
            self._resize(self._wf + max(self._step, (1.0 - self._wf) * _JUMP))
            return
        if abs(change) < _NOISE_Z * noise:  # noise: hold, and now and then probe a step back down
            if self._wf <= self._wf0:
                self._quiet = 0
                return
            if not probing:  # after a harmless probe, the next one comes at once
                self._quiet += 1
                if self._quiet < self._probe_after:
                    return
            self._quiet = 0
            self._probing = True
            self._step = -_STEP
            self._resize(max(self._wf0, self._wf - _STEP))
            return
        if probing:
            self._probe_after = min(2 * self._probe_after, _PROBE_MAX) if change < 0 else _PROBE_FIRST
        amount = self._step if change >= 0 else -self._step
        if abs(change) >= _RESTART_THRESHOLD:
            self._step = _STEP if amount >= 0 else -_STEP
        else:
            self._step = _STEP_DECAY * amount
        self._resize(self._wf + amount)
