"""Test helpers shipped with stratacache: :class:`FakeClock`, the :class:`TierContract` suite and ``staleness``.

``TierContract`` (which needs pytest, imported only when you use it) is the behaviour every tier configuration
must show, through both facades. A third-party tier (a :class:`~stratacache.tiers.TierSpec` subclass) runs it by
subclassing and overriding :meth:`TierContract.tiers`::

    class TestMyTier(TierContract):
        def tiers(self, tmp_path):
            return (MemoryTier(max_bytes="4MiB"), MyTier(..., max_bytes="1MiB"))

``staleness`` (imported only when you use it: ``from stratacache.testing import staleness``) records versioned
writes, invalidations and reads in a ``staleness.History`` and checks that no read returned a version older than
one whose invalidation had completed before the read started.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratacache import _staleness as staleness
    from stratacache._contract import TierContract
    from stratacache._faults import FaultProxy

__all__ = ["FakeClock", "FaultProxy", "TierContract", "staleness"]


def __getattr__(name: str) -> Any:
    if name == "TierContract":
        from stratacache._contract import TierContract

        return TierContract
    if name == "staleness":
        import stratacache._staleness as staleness

        return staleness
    if name == "FaultProxy":
        from stratacache._faults import FaultProxy

        return FaultProxy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FakeClock:
    """A clock that moves only when told: ``clock.advance(301)`` instead of sleeping for a TTL.

    Args:
        start: initial wall-clock reading (seconds since the epoch).
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """The current fake wall-clock time."""
        return self._now

    def monotonic(self) -> float:
        """The current fake monotonic time (advances with :meth:`advance`)."""
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += seconds
            self._mono += seconds
