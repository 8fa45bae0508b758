"""The envelope: what every tier stores for one cache entry."""

from __future__ import annotations

from typing import Any, ClassVar, Final, Generic, TypeVar

import msgspec

from stratacache.errors import DecodeError

__all__ = ["ENVELOPE_FORMAT", "Envelope", "L1Entry", "L1EntryX", "decode_envelope", "encode_envelope", "l1_entry"]

V = TypeVar("V")

ENVELOPE_FORMAT: Final = 1
"""First byte of a serialized envelope; a different byte is a miss, never a crash."""


class Envelope(msgspec.Struct, Generic[V], frozen=True, array_like=True, gc=False):
    """One stored entry.

    Shared and embedded tiers hold ``Envelope[bytes]`` (the codec output). The in-process L1 holds
    ``Envelope[Any]`` with the decoded object, so a hit needs no decode.

    Attributes:
        value: codec output (or the decoded object in L1).
        codec: codec id in the low 8 bits, the cache's schema tag above: a mismatch is a miss.
        created_at: wall-clock time of the write.
        expires_at: end of freshness, or ``None`` for no expiry.
        stale_until: end of the stale-while-revalidate / fail-safe window (``None``: same as ``expires_at``).
        delta: loader duration in seconds (XFetch's delta); 0 for plain ``set``.
        version: fencing number of the fill.
        gens: namespace generation, then one generation per tag, read before the value was produced.
        tags: the entry's tags, aligned with ``gens[1:]``.
        size: encoded size in bytes (the weight used for byte budgets).
    """

    value: V
    codec: int
    created_at: float
    expires_at: float | None
    stale_until: float | None
    delta: float
    version: int
    gens: tuple[int, ...]
    tags: tuple[str, ...]
    size: int

    def gc_at(self) -> float | None:
        """When a store may drop this entry: the later of ``expires_at`` and ``stale_until``."""
        if self.stale_until is not None:
            return self.stale_until
        return self.expires_at


class L1Entry(msgspec.Struct, frozen=True, gc=False):
    """What the in-process L1 holds for one entry: the fields a hit, expiry and eviction read, compactly.

    Never serialized (lower tiers hold :class:`Envelope`). Five fields instead of ten, and no float of its own
    beside ``expires_at`` in the usual case: 56 bytes plus ``expires_at`` against 96 plus three floats and a
    tuple (``docs/benchmarks.md``, "Memory per entry"). An entry with a stale window or an XFetch delta is an
    :class:`L1EntryX`, which has the two more fields; here they are class constants (``None`` and ``0.0``).
    Build entries with :func:`l1_entry`, which picks the class.

    Attributes:
        value: the decoded object (or the codec output with ``copy_on_read``).
        expires_at: end of freshness, or ``None`` for no expiry (read on every hit).
        gen: the namespace generation (an ``int``) for an entry without tags, which a hit compares with one
            ``==``; for a tagged entry the ``(gens, tags)`` pair of :class:`Envelope`.
        size: the entry's weight (byte budget).
        life: ``expires_at - created_at`` (an exact difference, and one shared float for every entry of one TTL:
            :class:`~stratacache.core.entries.EntryFactory` reuses equal values), or ``created_at`` itself when
            ``expires_at`` is ``None``.
        stale_until: as in :class:`Envelope` (always ``None`` here).
        delta: as in :class:`Envelope` (always ``0.0`` here).
    """

    value: Any
    expires_at: float | None
    gen: int | tuple[tuple[int, ...], tuple[str, ...]]
    size: int
    life: float
    stale_until: ClassVar[float | None] = None
    delta: ClassVar[float] = 0.0

    @property
    def created_at(self) -> float:
        """Wall-clock time of the write."""
        exp = self.expires_at
        return self.life if exp is None else exp - self.life

    @property
    def gens(self) -> tuple[int, ...]:
        """As :attr:`Envelope.gens`."""
        gen = self.gen
        return gen[0] if type(gen) is tuple else (gen,)  # type: ignore[return-value]

    @property
    def tags(self) -> tuple[str, ...]:
        """As :attr:`Envelope.tags`."""
        gen = self.gen
        return gen[1] if type(gen) is tuple else ()

    def gc_at(self) -> float | None:
        """When a store may drop this entry: the later of ``expires_at`` and ``stale_until``."""
        if self.stale_until is not None:
            return self.stale_until
        return self.expires_at

    def envelope(self, codec: int) -> Envelope[Any]:
        """The :class:`Envelope` view of this entry (for inspection; ``version`` is not kept in L1: 0)."""
        return Envelope(
            self.value,
            codec,
            self.created_at,
            self.expires_at,
            self.stale_until,
            self.delta,
            0,
            self.gens,
            self.tags,
            self.size,
        )


class L1EntryX(L1Entry, frozen=True, gc=False):
    """An :class:`L1Entry` with a stale window or an XFetch delta (72 bytes): the two fields are stored."""

    stale_until: float | None  # type: ignore[misc]  # a field here, a class constant in the base
    delta: float  # type: ignore[misc]


def l1_entry(
    value: Any,
    expires_at: float | None,
    gen: int | tuple[tuple[int, ...], tuple[str, ...]],
    size: int,
    life: float,
    *,
    stale_until: float | None,
    delta: float,
) -> L1Entry:
    """An :class:`L1Entry`, or an :class:`L1EntryX` when ``stale_until`` or ``delta`` is set."""
    if stale_until is None and not delta:
        return L1Entry(value, expires_at, gen, size, life)
    return L1EntryX(value, expires_at, gen, size, life, stale_until, delta)


_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Envelope[bytes]] = msgspec.msgpack.Decoder(Envelope[bytes])
_PREFIX: Final = bytes([ENVELOPE_FORMAT])
_BUFFERS: Final = (bytes, bytearray, memoryview)  # a tuple: ``bytes | ...`` would build a union at every call
_COPY_MAX: Final = 4096  # below this a slice (one small copy) is cheaper than a memoryview and its slice


def encode_envelope(env: Envelope[bytes]) -> bytes:
    """Serialize a bytes envelope for an embedded or shared store."""
    return _PREFIX + _encoder.encode(env)


def decode_envelope(data: bytes | memoryview) -> Envelope[bytes]:
    """Deserialize what :func:`encode_envelope` wrote.

    Raises:
        DecodeError: the bytes are truncated, corrupt or of another envelope format.
    """
    if not isinstance(data, _BUFFERS) or not data or data[0] != ENVELOPE_FORMAT:
        raise DecodeError("unknown envelope format")
    try:
        return _decoder.decode(data[1:] if len(data) <= _COPY_MAX else memoryview(data)[1:])
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:  # UnicodeDecodeError too
        raise DecodeError(f"corrupt envelope: {exc}") from exc
