"""Tiers: dumb, atomic stores of envelopes, described by specs (``MemoryTier``, ``SQLiteTier``, ``RedisTier``)."""

from stratacache.tiers.redis_spec import RedisTier
from stratacache.tiers.specs import MemoryTier, SQLiteTier, TierSpec

__all__ = ["MemoryTier", "RedisTier", "SQLiteTier", "TierSpec"]
