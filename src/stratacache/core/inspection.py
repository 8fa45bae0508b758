"""What one tier holds for one key, described for an operator (``Cache.inspect``, ``stratacache inspect``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from stratacache.core.envelope import Envelope

__all__ = ["CODEC_NAMES", "EntryInfo", "describe"]

CODEC_NAMES: Final = {1: "msgpack", 2: "json", 3: "pickle"}
"""Built-in codec ids; ``+zstd`` sets the 128 bit. Other ids belong to user codecs."""


@dataclass(frozen=True, slots=True)
class EntryInfo:
    """One tier's view of one key.

    Attributes:
        tier: the tier's name (``memory``, ``sqlite``, ``redis``).
        present: the tier holds an entry for the key (fresh, stale or superseded).
        error: why the tier could not be asked (``None`` when it answered).
        age: seconds since the entry was written.
        ttl_left: seconds of freshness left (negative: expired that long ago; ``None``: no expiry).
        stale_left: seconds left in the stale window (``None``: no stale window).
        size: encoded size in bytes.
        codec: codec name (``"msgpack"``, ``"json+zstd"``, ``"codec#42"`` for a user codec).
        schema: the schema tag the entry was written under.
        tags: the entry's tags.
        generations: ``{name: (at write, now)}`` for the namespace and each tag (``now`` is ``None`` when the
            counters could not be read).
        current: the entry would be served (fresh and no generation moved since it was written); ``None`` when
            unknown (counters unreadable).
        version: the fencing number of the fill that wrote it.
    """

    tier: str
    present: bool
    error: str | None = None
    age: float | None = None
    ttl_left: float | None = None
    stale_left: float | None = None
    size: int | None = None
    codec: str | None = None
    schema: int | None = None
    tags: tuple[str, ...] = ()
    generations: tuple[tuple[str, int, int | None], ...] = ()
    current: bool | None = None
    version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``stratacache inspect --json``)."""
        return {
            "tier": self.tier,
            "present": self.present,
            "error": self.error,
            "age": self.age,
            "ttl_left": self.ttl_left,
            "stale_left": self.stale_left,
            "size": self.size,
            "codec": self.codec,
            "schema": self.schema,
            "tags": list(self.tags),
            "generations": [{"name": n, "at_write": w, "now": c} for n, w, c in self.generations],
            "current": self.current,
            "version": self.version,
        }


def codec_name(codec_id: int) -> str:
    """The name of a stored codec id (low 8 bits of the envelope's codec field)."""
    base = CODEC_NAMES.get(codec_id & 0x7F, f"codec#{codec_id & 0x7F}")
    return base + "+zstd" if codec_id & 0x80 else base


def describe(
    tier: str, env: Envelope[Any], now: float, current_gens: tuple[int, ...] | None, *, schema: int
) -> EntryInfo:
    """An :class:`EntryInfo` of a present entry; ``current_gens`` are the live ``(namespace, *tags)`` counters."""
    exp, stale = env.expires_at, env.stale_until
    names = ("<namespace>", *env.tags)
    gens = tuple(
        (name, written, None if current_gens is None else current_gens[i])
        for i, (name, written) in enumerate(zip(names, env.gens, strict=False))
    )
    fresh = exp is None or now < exp
    current = None if current_gens is None else fresh and tuple(current_gens) == tuple(env.gens)
    stored_schema = env.codec >> 8
    return EntryInfo(
        tier=tier,
        present=True,
        age=now - env.created_at,
        ttl_left=None if exp is None else exp - now,
        stale_left=None if stale is None else stale - now,
        size=env.size,
        codec=codec_name(env.codec & 0xFF),
        schema=stored_schema,
        tags=tuple(env.tags),
        generations=gens,
        current=current if stored_schema == schema else False,
        version=env.version,
    )
