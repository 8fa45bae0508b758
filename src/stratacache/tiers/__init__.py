"""Tiers: dumb, atomic stores of envelopes, described by specs (``MemoryTier``, ``SQLiteTier``)."""

from stratacache.tiers.specs import MemoryTier, SQLiteTier, TierSpec

__all__ = ["MemoryTier", "SQLiteTier", "TierSpec"]
