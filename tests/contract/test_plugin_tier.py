"""A third-party tier plugs in through TierSpec and passes the shipped contract, L1 above it or alone."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stratacache import MemoryTier, TierSpec
from stratacache.metrics.stats import TierCounters
from stratacache.testing import TierContract

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from stratacache._types import Changes
    from stratacache.core.envelope import Envelope


class DictStore:
    """The smallest honest Store: a locked dict of envelopes, generation counters and per-key write numbers."""

    name = "dict"
    shared = True

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.counters = TierCounters()
        self._lock = threading.Lock()
        self._data: dict[str, Envelope[bytes]] = {}
        self._gens: dict[str, int] = {}
        self._seq = 0  # write fence: every set or delete takes the next number
        self._written: dict[str, int] = {}

    def get_many(self, keys: Sequence[str]) -> list[Envelope[bytes] | None]:
        with self._lock:
            return [self._data.get(k) for k in keys]

    def _store(self, items: Sequence[tuple[str, Envelope[bytes]]]) -> None:
        for k, e in items:
            self._seq += 1
            self._written[k] = self._seq
            self._data[k] = e

    def set_many(self, items: Sequence[tuple[str, Envelope[bytes]]]) -> None:
        with self._lock:
            self._store(items)

    def delete_many(self, keys: Sequence[str]) -> int:
        with self._lock:
            for k in keys:
                self._seq += 1
                self._written[k] = self._seq
            return sum(self._data.pop(k, None) is not None for k in keys)

    def get_gens(self, names: Sequence[str]) -> tuple[int, ...]:
        with self._lock:
            return tuple(self._gens.get(n, 0) for n in names)

    def bump_gens(self, names: Sequence[str]) -> tuple[int, ...]:
        with self._lock:
            for n in names:
                self._gens[n] = self._gens.get(n, 0) + 1
            return tuple(self._gens[n] for n in names)

    def fence(self, keys: Sequence[str]) -> int:
        with self._lock:
            return self._seq

    def fill_many(self, items: Sequence[tuple[str, Envelope[bytes]]], since: int) -> list[str]:
        with self._lock:
            stored = [(k, e) for k, e in items if self._written.get(k, 0) <= since]
            self._store(stored)
            return [k for k, _ in stored]

    def poll(self, apply: Callable[[Changes], None]) -> None:
        pass  # one process: nothing changes behind the engine's back

    def usage(self) -> tuple[int, int]:
        with self._lock:
            return len(self._data), sum(e.size for e in self._data.values())

    def close(self) -> None:
        with self._lock:
            self._data.clear()


@dataclass(frozen=True)
class DictTier(TierSpec):
    max_bytes: int = 1024 * 1024

    def build(self, *, now: Callable[[], float]) -> DictStore:
        return DictStore(self.max_bytes)


class TestPluginTierAlone(TierContract):
    def tiers(self, tmp_path: Path) -> tuple[DictTier, ...]:
        return (DictTier(),)


class TestPluginTierUnderMemory(TierContract):
    def tiers(self, tmp_path: Path) -> tuple[MemoryTier | DictTier, ...]:
        return (MemoryTier(max_entries=1000, max_bytes="4MiB"), DictTier())
