"""Building entries (pure): encode once, weigh, stamp expiry and generations, refuse what cannot be stored.

Everything a write must check about a value happens here, before any tier is touched, so bad input raises at
the call site and leaves the cache unchanged.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, TypeAlias

from stratacache.core.envelope import Envelope, L1Entry, encode_envelope, l1_entry
from stratacache.core.freshness import expiry
from stratacache.errors import ValueTooLargeError

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Sequence

    from stratacache._types import Clock, Codec

__all__ = ["EntryFactory", "Prepared", "cap_expiry"]

_LIVES = 64  # distinct recent L1 lifetimes kept for sharing

Prepared: TypeAlias = "tuple[str, str, Envelope[bytes], L1Entry | None]"
"""A stored key, the L1's key (the same without the namespace prefix), its bytes envelope for lower tiers, and its
L1 entry (``None`` without an L1)."""


class EntryFactory:
    """Makes the envelopes of one cache's writes.

    Args:
        codec: the cache's codec; ``schema`` is packed above its id in every envelope.
        clock: wall clock for ``created_at`` and expiry; ``jitter``/``rng`` shorten TTLs at random.
        lower_limits: ``(tier name, max_bytes)`` of every tier below L1, to refuse what one can never hold.
        l1_check: the L1's weight check (raises ``ValueTooLargeError``), or ``None`` without an L1.
        weigher: ``weigher(key, value)`` L1 weight; the encoded size when ``None``.
        l1_cap: longest life of an L1 copy (``None``: as long as the entry).
        copy_on_read: the L1 keeps bytes (decoded per hit) instead of the object.
    """

    __slots__ = (
        "_clock",
        "_codec",
        "_copy",
        "_jitter",
        "_l1_cap",
        "_l1_check",
        "_lives",
        "_lower_limits",
        "_rng",
        "_tag",
        "_versions",
        "_weigher",
    )

    def __init__(
        self,
        *,
        codec: Codec,
        schema: int,
        clock: Clock,
        jitter: float,
        rng: random.Random,
        lower_limits: Sequence[tuple[str, int | None]],
        l1_check: Callable[[int], None] | None,
        weigher: Callable[[str, Any], int] | None,
        l1_cap: float | None,
        copy_on_read: bool,
    ) -> None:
        self._codec = codec
        self._tag = codec.id | (schema << 8)
        self._clock = clock
        self._jitter = jitter
        self._rng = rng
        self._lower_limits = tuple(lower_limits)
        self._l1_check = l1_check
        self._weigher = weigher
        self._l1_cap = l1_cap
        self._copy = copy_on_read
        self._versions = itertools.count(1)
        self._lives: dict[float, float] = {}  # L1 lifetimes seen lately: equal ones share one float object

    @property
    def codec_tag(self) -> int:
        """The codec id and schema tag every envelope of this cache carries."""
        return self._tag

    def prepare(
        self,
        k: str,
        s: str,
        value: Any,
        ttl: float | None,
        tags: tuple[str, ...],
        *,
        gens: tuple[int, ...],
        delta: float,
        stale_for: float | None = None,
    ) -> Prepared:
        """Encode and weigh one entry; ``stale_for``: seconds after expiry it is kept to be served stale.

        ``k`` is the stored key, ``s`` the L1's (``k`` without the namespace prefix), returned as they are.

        Raises:
            EncodeError: the codec cannot encode ``value``.
            ValueTooLargeError: a tier could never hold it.
        """
        data = self._codec.encode(value, k)
        now = self._clock.now()
        expires_at = expiry(now, ttl, self._jitter, self._rng)
        env = Envelope(
            value=data,
            codec=self._tag,
            created_at=now,
            expires_at=expires_at,
            stale_until=None if expires_at is None or stale_for is None else expires_at + stale_for,
            delta=delta,
            version=next(self._versions),
            gens=gens,
            tags=tags,
            size=len(data),
        )
        self._check_size(env)
        return k, s, env, self.for_l1(k, env, value, now)

    def _check_size(self, env: Envelope[bytes]) -> None:
        """Refuse an entry whose stored form exceeds a lower tier's byte budget."""
        if not self._lower_limits:  # an L1-only cache: nothing to check (and no slack to sum)
            return
        size = env.size
        slack = 256 + 4 * sum(len(t) + 8 for t in env.tags)  # envelope fields around the payload, generously
        for name, limit in self._lower_limits:
            if limit is None or size + slack <= limit:
                continue
            stored = len(encode_envelope(env))  # exact, computed only near the limit
            if stored > limit:
                raise ValueTooLargeError(
                    f"value is stored as {stored} bytes, more than the {name} tier's max_bytes={limit}"
                )

    def for_l1(self, k: str, env: Envelope[bytes], value: Any, now: float) -> L1Entry | None:
        """The L1 copy of ``env`` (weighed, TTL-capped), or ``None`` without an L1.

        Raises:
            ValueTooLargeError: heavier than the L1's whole budget.
        """
        check = self._l1_check
        if check is None:
            return None
        weight = self._weigher(k, value) if self._weigher is not None else env.size
        check(weight)
        cap = self._l1_cap
        expires_at = env.expires_at
        stale_until = env.stale_until
        if cap is not None and (expires_at is None or expires_at > now + cap):
            expires_at = now + cap
            stale_until = None  # a capped copy is not served stale past its cap (the lower tier's copy may be)
        held = env.value if self._copy else value
        if stale_until is not None and expires_at is not None and stale_until < expires_at:
            stale_until = expires_at
        tags = env.tags
        gens = env.gens
        return l1_entry(
            held,
            expires_at,
            gens[0] if not tags and gens else (gens, tags),
            weight,
            env.created_at if expires_at is None else self._life(expires_at - env.created_at),
            stale_until=stale_until,
            delta=env.delta,
        )

    def _life(self, life: float) -> float:
        """``life``, or an equal float seen lately: entries of one TTL share one object (24 bytes each less)."""
        lives = self._lives
        shared = lives.get(life)
        if shared is not None:
            return shared
        if len(lives) >= _LIVES:  # jittered or capped lifetimes are all different: keep a few only
            lives.clear()
        lives[life] = life
        return life


def cap_expiry(entry: L1Entry, until: float) -> L1Entry:
    """``entry`` living no later than ``until``, stale window included (the same object when it already does).

    A capped copy is one whose coherence is only bounded by its cap (an L1 copy while the shared tier is down):
    serving it stale past the cap would break that bound, so the stale window ends there too.
    """
    if entry.expires_at is not None and entry.expires_at <= until and (entry.stale_until or 0) <= until:
        return entry
    exp = until if entry.expires_at is None else min(entry.expires_at, until)
    return l1_entry(
        entry.value, exp, entry.gen, entry.size, exp - entry.created_at, stale_until=None, delta=entry.delta
    )
