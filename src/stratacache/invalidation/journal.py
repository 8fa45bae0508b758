"""The invalidation journal (pure): what a shared tier missed while it was unreachable, replayed on recovery.

While a shared tier is down, ``set`` and ``delete`` cannot reach it and ``invalidate_tags``/``clear`` cannot bump
its counters. Nothing of that may be lost: a key written or deleted meanwhile still has its old value in the tier,
and would be served again once the tier is back. The engine therefore records, per shared tier:

- keys written or deleted during the outage: replayed as deletes (the tier's old copy must go; the new value, if
  any, is loaded again on the next miss);
- generation counters bumped during the outage: replayed as bumps.

The journal is bounded. When it overflows it stops recording and remembers that it did; the replay then bumps the
namespace's generation instead, which makes every entry of the namespace a miss: coarse, but nothing stale
survives (FusionCache's auto-recovery, made safe). Until the replay succeeded, the tier is not read.
"""

from __future__ import annotations

from typing import NamedTuple

from stratacache.errors import ConfigError

__all__ = ["Journal", "Replay"]


class Replay(NamedTuple):
    """What to send to the recovered tier: deletes, then bumps; ``overflowed``: bump the namespace instead."""

    keys: tuple[str, ...]
    gens: tuple[str, ...]
    overflowed: bool


class Journal:
    """A bounded record of the invalidations one shared tier has not received.

    Args:
        limit: most keys and counter names held; beyond it the journal overflows (see the module docstring).
    """

    __slots__ = ("_gens", "_keys", "_limit", "overflowed", "recorded")

    def __init__(self, limit: int = 10_000) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"journal limit must be an int >= 1, got {limit!r}")
        self._limit = limit
        self._keys: dict[str, None] = {}
        self._gens: dict[str, None] = {}
        self.overflowed = False
        self.recorded = 0
        """Invalidations recorded since the cache started (for stats)."""

    def __bool__(self) -> bool:
        return self.overflowed or bool(self._keys) or bool(self._gens)

    def __len__(self) -> int:
        return len(self._keys) + len(self._gens)

    def add_keys(self, keys: list[str] | tuple[str, ...]) -> None:
        """Record keys written or deleted while the tier was unreachable."""
        self.recorded += len(keys)
        if self.overflowed:
            return
        self._keys.update(dict.fromkeys(keys))
        self._check()

    def add_gens(self, names: list[str] | tuple[str, ...]) -> None:
        """Record generation counters bumped while the tier was unreachable."""
        self.recorded += len(names)
        if self.overflowed:
            return
        self._gens.update(dict.fromkeys(names))
        self._check()

    def pending(self) -> Replay:
        """What a replay must send now (the journal is unchanged until :meth:`done`)."""
        if self.overflowed:
            return Replay((), (), overflowed=True)
        return Replay(tuple(self._keys), tuple(self._gens), overflowed=False)

    def done(self, replay: Replay) -> None:
        """Forget what ``replay`` sent successfully (entries recorded meanwhile stay)."""
        if replay.overflowed:
            self.overflowed = False
            self._keys.clear()
            self._gens.clear()
            return
        for k in replay.keys:
            self._keys.pop(k, None)
        for name in replay.gens:
            self._gens.pop(name, None)

    def _check(self) -> None:
        if len(self._keys) + len(self._gens) > self._limit:
            self.overflowed = True
            self._keys.clear()
            self._gens.clear()
