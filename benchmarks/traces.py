"""Seeded synthetic key traces for the ``hitrate`` suite.

Every generator is deterministic for a given ``seed`` (its own ``random.Random``) and returns a list of string
keys. Popularity ranks are mapped to keys through a seeded permutation, so the hot keys are not the low ids.

- ``zipf``: independent requests, Zipf(s) popularity over ``n_keys`` keys (frequency is everything).
- ``scan_zipf``: Zipf(1.0) over 10k keys, polluted by sequential scans of 1,000 keys each through a separate
  10k-key range (a quarter of the requests); scanned keys are not reused before the scan wraps around.
- ``hot_spot``: 90% of requests go uniformly to a 200-key window that slides over 20k keys during the trace,
  the rest uniformly to all keys (recency is everything; yesterday's hot keys never come back soon).
- ``loop_zipf``: half the requests walk a loop of 1,230 keys in order (about 1.1x the 10% capacity, so LRU
  misses every loop request at that size), half are Zipf(0.9) over the other 10,770 keys.
- ``freq_shift``: Zipf(1.0) over 10k keys for the first half, then over 10k different keys (the hot set
  changes at once: old frequencies must age out).
- ``mixed``: half the requests are Zipf(0.9) over 8k keys (a frequency core); the other half follow a stream of
  fresh keys that are re-read a few times soon after they first appear (recency), ~10k stream keys in all.
"""

from __future__ import annotations

import itertools
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

N_REQUESTS = 200_000


def _zipf_sampler(rng: random.Random, s: float, n_keys: int, offset: int = 0) -> Callable[[int], list[str]]:
    """A function drawing ``k`` keys with Zipf(s) popularity over ids ``offset .. offset + n_keys - 1``."""
    cum = list(itertools.accumulate(1.0 / (rank**s) for rank in range(1, n_keys + 1)))
    ids = list(range(offset, offset + n_keys))
    rng.shuffle(ids)
    keys = [f"k{i}" for i in ids]
    population = range(n_keys)

    def draw(k: int) -> list[str]:
        return [keys[r] for r in rng.choices(population, cum_weights=cum, k=k)]

    return draw


def zipf(s: float, *, n_keys: int = 10_000, n: int = N_REQUESTS, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return _zipf_sampler(rng, s, n_keys)(n)


def scan_zipf(*, n: int = N_REQUESTS, seed: int = 2, scan_len: int = 1_000, scan_share: float = 0.25) -> list[str]:
    rng = random.Random(seed)
    draw = _zipf_sampler(rng, 1.0, 10_000)
    scan_keys = 10_000
    out: list[str] = []
    pos = 0
    # between two scans, enough Zipf requests that scans are scan_share of the total
    gap = round(scan_len * (1 - scan_share) / scan_share)
    while len(out) < n:
        out += draw(rng.randint(gap // 2, gap + gap // 2))
        out += [f"s{(pos + i) % scan_keys}" for i in range(scan_len)]
        pos = (pos + scan_len) % scan_keys
    return out[:n]


def hot_spot(*, n: int = N_REQUESTS, seed: int = 3, n_keys: int = 20_000, window: int = 200) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    span = n_keys - window
    for t in range(n):
        i = span * t // n + rng.randrange(window) if rng.random() < 0.9 else rng.randrange(n_keys)
        out.append(f"h{i}")
    return out


def loop_zipf(*, n: int = N_REQUESTS, seed: int = 4, loop_len: int = 1_230, n_keys: int = 12_000) -> list[str]:
    rng = random.Random(seed)
    draw = _zipf_sampler(rng, 0.9, n_keys - loop_len, offset=loop_len)
    background = draw(n)
    out: list[str] = []
    pos = 0
    for t in range(n):
        if rng.random() < 0.5:
            out.append(f"k{pos}")
            pos = (pos + 1) % loop_len
        else:
            out.append(background[t])
    return out


def freq_shift(*, n: int = N_REQUESTS, seed: int = 5, n_keys: int = 10_000) -> list[str]:
    rng = random.Random(seed)
    first = _zipf_sampler(rng, 1.0, n_keys)(n // 2)
    second = _zipf_sampler(rng, 1.0, n_keys, offset=n_keys)(n - n // 2)
    return first + second


def mixed(*, n: int = N_REQUESTS, seed: int = 6, core_keys: int = 8_000, recent: int = 64) -> list[str]:
    rng = random.Random(seed)
    draw = _zipf_sampler(rng, 0.9, core_keys)
    core = iter(draw(n))
    new_key_p = 0.1  # of the recency half: ~10k stream keys over 200k requests
    stream = 0
    out: list[str] = []
    for _ in range(n):
        if rng.random() < 0.5:
            out.append(next(core))
        elif stream == 0 or rng.random() < new_key_p:
            stream += 1
            out.append(f"r{stream}")
        else:
            # re-read a recent stream key, the newest ones most often
            back = min(int(rng.expovariate(1 / 8)), recent - 1, stream - 1)
            out.append(f"r{stream - back}")
    return out


TRACES: dict[str, Callable[[], list[str]]] = {
    "zipf-0.8": lambda: zipf(0.8),
    "zipf-1.0": lambda: zipf(1.0),
    "zipf-1.2": lambda: zipf(1.2),
    "scan+zipf": scan_zipf,
    "hot-spot": hot_spot,
    "loop+zipf": loop_zipf,
    "freq-shift": freq_shift,
    "mixed": mixed,
}
"""The suite's traces, in display order."""
