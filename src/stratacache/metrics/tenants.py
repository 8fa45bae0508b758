"""Per-tenant hit and miss counts with a bounded number of tenants (the ``tenant`` metric label).

Off by default. ``Cache(..., tenant_of=lambda key: key.split(":", 1)[0], max_tenants=50)`` counts every lookup
under the tenant that ``tenant_of`` names for its key. The first ``max_tenants`` tenants seen get their own
counters; every later one is counted as ``"other"``, so a metric labelled by tenant has at most
``max_tenants + 1`` series per namespace however many tenants the keys name. A ``tenant_of`` that raises or
returns a non-``str`` counts the lookup as ``"unknown"`` (one more series) rather than failing the lookup.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

from stratacache.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["OTHER", "UNKNOWN", "Tenants"]

OTHER: Final = "other"
"""The tenant label of every tenant beyond ``max_tenants``."""
UNKNOWN: Final = "unknown"
"""The tenant label of keys ``tenant_of`` could not name."""


class Tenants:
    """Hit and miss counters per tenant, at most ``max_tenants`` of them plus ``"other"``.

    Args:
        of: names the tenant of a key (the key as stored: a ``str`` key as given, a tuple in its encoded form).
        max_tenants: tenants with counters of their own; later ones are counted as ``"other"``.

    Raises:
        ConfigError: ``of`` is not callable or ``max_tenants`` is not a positive int.
    """

    def __init__(self, of: Callable[[str], str], max_tenants: int = 100) -> None:
        if not callable(of):
            raise ConfigError(f"tenant_of must be callable, got {type(of).__name__}")
        if isinstance(max_tenants, bool) or not isinstance(max_tenants, int) or not 1 <= max_tenants <= 10_000:
            raise ConfigError(f"max_tenants must be an int in [1, 10000], got {max_tenants!r}")
        self._of = of
        self.max_tenants = max_tenants
        self._counts: dict[str, list[int]] = {}  # tenant -> [hits, misses]
        self._other = [0, 0]
        self._lock = threading.Lock()

    def record(self, key: str, hit: bool) -> None:
        """Count one lookup of ``key`` under its tenant."""
        try:
            named: object = self._of(key)
        except Exception:  # a user callback must never fail a lookup
            named = UNKNOWN
        tenant = named if isinstance(named, str) else UNKNOWN
        counts = self._counts.get(tenant)
        if counts is None:
            counts = self._slot(tenant)
        counts[0 if hit else 1] += 1

    def _slot(self, tenant: str) -> list[int]:
        if tenant == OTHER or (len(self._counts) >= self.max_tenants and tenant != UNKNOWN):
            return self._other  # full: no lock, no growth
        with self._lock:
            if len(self._counts) >= self.max_tenants and tenant != UNKNOWN:
                return self._other
            return self._counts.setdefault(tenant, [0, 0])

    def snapshot(self) -> tuple[tuple[str, int, int], ...]:
        """``(tenant, hits, misses)`` per tenant, busiest first."""
        with self._lock:
            items = [(t, c[0], c[1]) for t, c in self._counts.items()]
        if self._other[0] or self._other[1]:
            items.append((OTHER, self._other[0], self._other[1]))
        return tuple(sorted(items, key=lambda x: (-(x[1] + x[2]), x[0])))
