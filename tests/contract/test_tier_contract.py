"""The shipped tier contract, run over every tier configuration of the foundation, through both facades."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from stratacache import MemoryTier, SQLiteTier
from stratacache.testing import TierContract

if TYPE_CHECKING:
    from pathlib import Path


class TestMemoryOnly(TierContract):
    def tiers(self, tmp_path: Path) -> tuple[MemoryTier, ...]:
        return (MemoryTier(max_entries=1000, max_bytes="1MiB"),)


class TestMemoryCopyOnRead(TierContract):
    def tiers(self, tmp_path: Path) -> tuple[MemoryTier, ...]:
        return (MemoryTier(max_entries=1000, max_bytes="1MiB", copy_on_read=True),)


class TestSQLiteOnly(TierContract):
    def tiers(self, tmp_path: Path) -> tuple[SQLiteTier, ...]:
        return (SQLiteTier(tmp_path / "cache.db", max_bytes="1MiB"),)


class TestMemoryOverSQLite(TierContract):
    def tiers(self, tmp_path: Path) -> tuple[MemoryTier | SQLiteTier, ...]:
        return (MemoryTier(max_entries=1000, max_bytes="4MiB"), SQLiteTier(tmp_path / "cache.db", max_bytes="1MiB"))


class TestFromURLs(TierContract):
    def tiers(self, tmp_path: Path) -> tuple[str, ...]:
        return ("memory://?max_entries=1000&max_bytes=1MiB", f"sqlite://{tmp_path}/cache.db?max_bytes=1MiB")


@pytest.mark.filterwarnings("ignore:policy='tinylfu':UserWarning")  # experimental policy, same contract
class TestTinyLFUOverSQLite(TierContract):
    def tiers(self, tmp_path: Path) -> tuple[MemoryTier | SQLiteTier, ...]:
        return (
            MemoryTier(max_entries=1000, max_bytes="4MiB", policy="tinylfu"),
            SQLiteTier(tmp_path / "cache.db", max_bytes="1MiB"),
        )


@pytest.mark.filterwarnings("ignore:policy='tinylfu':UserWarning")
class TestTinyLFUBytesOnly(TierContract):
    def tiers(self, tmp_path: Path) -> tuple[MemoryTier, ...]:
        return (MemoryTier(max_entries=None, max_bytes="1MiB", policy="tinylfu"),)
