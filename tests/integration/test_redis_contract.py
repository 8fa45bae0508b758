"""The shipped tier contract over the Redis tier (Redis and Valkey), through both facades."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from stratacache import MemoryTier, RedisTier
from stratacache.testing import TierContract

if TYPE_CHECKING:
    from pathlib import Path


def _prefix() -> str:
    """A private key prefix per test: tests share one server and never flush it."""
    return f"t{uuid.uuid4().hex[:12]}:"


class _OnRedis(TierContract):
    url: str

    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str) -> None:
        self.url = redis_url

    def redis(self) -> RedisTier:
        # generous budgets: these tests check behaviour, not latency, on a loaded CI machine
        return RedisTier(self.url, prefix=_prefix(), timeout=2.0, connect_timeout=2.0, max_value_bytes="1MiB")


class TestMemoryOverRedis(_OnRedis):
    def tiers(self, tmp_path: Path) -> tuple[MemoryTier | RedisTier, ...]:
        return (MemoryTier(max_entries=1000, max_bytes="4MiB"), self.redis())


class TestRedisOnly(_OnRedis):
    def tiers(self, tmp_path: Path) -> tuple[RedisTier, ...]:
        return (self.redis(),)


class TestFromURL(_OnRedis):
    def tiers(self, tmp_path: Path) -> tuple[str, ...]:
        return (
            "memory://?max_entries=1000&max_bytes=4MiB",
            f"{self.url}?prefix={_prefix()}&timeout=2&connect_timeout=2&max_value_bytes=1MiB",
        )


class TestMemoryOverRedisRelaxedReads(_OnRedis):
    """``strict_reads=False``: L2 reads trust the counters the backplane keeps fresh; the same contract holds."""

    def tiers(self, tmp_path: Path) -> tuple[MemoryTier | RedisTier, ...]:
        spec = RedisTier(
            self.url, prefix=_prefix(), timeout=2.0, connect_timeout=2.0, max_value_bytes="1MiB", strict_reads=False
        )
        return (MemoryTier(max_entries=1000, max_bytes="4MiB"), spec)
