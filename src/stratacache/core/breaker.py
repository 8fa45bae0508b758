"""A circuit breaker (pure): decides whether a call to a shared tier may be attempted, from the calls' outcomes.

States (after FusionCache's and Polly's breakers):

- **closed**: calls go through. It opens after ``failures`` consecutive failures, or when at least ``ratio`` of
  the last ``window`` calls failed (once ``window`` calls were seen).
- **open**: calls are refused without touching the network until ``open_for`` seconds have passed.
- **half-open**: one probe call at a time is let through; its success closes the breaker, its failure opens it
  again for ``open_for`` seconds. A probe that never reports back (its caller was cancelled) frees the slot
  after ``open_for`` seconds, so a lost probe cannot wedge the breaker half-open.

The breaker holds no lock: state changes are single attribute writes under the GIL, and a lost update only
costs one extra or one fewer probe. Time comes from the caller (a monotonic clock).
"""

from __future__ import annotations

from collections import deque
from typing import Final

from stratacache.errors import ConfigError

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "Breaker"]

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"


class Breaker:
    """The state machine of one tier's circuit breaker.

    Args:
        failures: consecutive failures that open the breaker.
        ratio: failure ratio over the last ``window`` calls that opens it (``1.0`` disables the ratio rule).
        window: number of recent calls the ratio is computed over.
        open_for: seconds the breaker stays open before letting a probe through.

    Raises:
        ConfigError: a parameter out of range.
    """

    __slots__ = ("_consecutive", "_failures", "_open_for", "_outcomes", "_probe_at", "_ratio", "opened", "state")

    def __init__(self, *, failures: int = 5, ratio: float = 0.5, window: int = 20, open_for: float = 1.0) -> None:
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise ConfigError(f"breaker failures must be an int >= 1, got {failures!r}")
        if not isinstance(ratio, int | float) or not 0.0 < ratio <= 1.0:
            raise ConfigError(f"breaker ratio must be in (0, 1], got {ratio!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 2:
            raise ConfigError(f"breaker window must be an int >= 2, got {window!r}")
        if not isinstance(open_for, int | float) or not 0.0 < open_for <= 3600.0:
            raise ConfigError(f"breaker open_for must be seconds in (0, 3600], got {open_for!r}")
        self._failures = failures
        self._ratio = float(ratio)
        self._open_for = float(open_for)
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._consecutive = 0
        self._probe_at = 0.0
        self.state: str = CLOSED
        self.opened = 0
        """How many times the breaker opened (for stats)."""

    def allow(self, now: float) -> bool:
        """Whether a call may be attempted at monotonic time ``now`` (a half-open probe is reserved if so)."""
        state = self.state
        if state == CLOSED:
            return True
        if now < self._probe_at:
            return False
        # open and its time is up, or a half-open probe that never reported back: let one probe through
        self.state = HALF_OPEN
        self._probe_at = now + self._open_for
        return True

    def success(self) -> None:
        """Record a successful call: a half-open breaker closes."""
        self._consecutive = 0
        if self.state != CLOSED:
            self.state = CLOSED
            self._outcomes.clear()
        else:
            self._outcomes.append(True)

    def failure(self, now: float) -> None:
        """Record a failed call at monotonic time ``now``; the breaker may open."""
        if self.state == HALF_OPEN:
            self._trip(now)
            return
        if self.state == OPEN:
            return
        self._consecutive += 1
        outcomes = self._outcomes
        outcomes.append(False)
        full = len(outcomes) == outcomes.maxlen
        if self._consecutive >= self._failures or (full and outcomes.count(False) >= self._ratio * len(outcomes)):
            self._trip(now)

    def reset(self) -> None:
        """Close the breaker and forget every outcome."""
        self.state = CLOSED
        self._consecutive = 0
        self._outcomes.clear()

    def _trip(self, now: float) -> None:
        self.state = OPEN
        self.opened += 1
        self._consecutive = 0
        self._outcomes.clear()
        self._probe_at = now + self._open_for
