"""Invalidation by generation counters (O(1) per tag, never a key scan)."""
