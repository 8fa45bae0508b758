"""Time, injected: the engine never calls ``time`` directly (``stratacache.testing.FakeClock`` in tests)."""

from __future__ import annotations

import time
from typing import Final

__all__ = ["SYSTEM_CLOCK", "SystemClock"]


class SystemClock:
    """Wall-clock time for expiry (entries outlive processes) and a monotonic clock for durations."""

    __slots__ = ()

    def now(self) -> float:
        """Seconds since the epoch (the time stored in envelopes)."""
        return time.time()

    def monotonic(self) -> float:
        """A monotonic reading in seconds, for measuring loader durations and deadlines."""
        return time.monotonic()


SYSTEM_CLOCK: Final = SystemClock()
