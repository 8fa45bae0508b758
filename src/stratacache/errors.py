"""The exception tree of stratacache.

Every exception stratacache raises derives from :class:`StrataCacheError`::

    StrataCacheError
    ├── ConfigError(ValueError)        bad URL, policy, codec, size; missing extra or signing key
    ├── InvalidKeyError(ValueError)    unsupported type, empty, too long
    ├── InvalidTTLError(ValueError)    negative, zero, NaN, infinite, bool
    ├── ValueTooLargeError(ValueError) heavier than a tier's whole byte budget
    ├── CodecError
    │   ├── EncodeError(TypeError)     the value cannot be serialized (alias: SerializationError)
    │   └── DecodeError                a miss on reads, never raised there
    │       └── SignatureError         a signed-pickle payload failed its HMAC check
    ├── LoadTimeout(TimeoutError)      a loader outlasted its hard timeout (LoadPolicy)
    ├── TierError                      counted, never raised from reads
    │   ├── TierTimeoutError
    │   └── TierUnavailableError       circuit open
    └── CacheClosedError

Errors caused by bad input (keys, TTLs, values, configuration) are raised at the call site before any tier is
touched, so the cache is unchanged. Tier failures are counted in :meth:`stratacache.Cache.stats` and turned into
misses on the read path; writes and invalidations that could not reach a tier raise :class:`TierError` so that
they are never lost silently.
"""

from __future__ import annotations

__all__ = [
    "CacheClosedError",
    "CodecError",
    "ConfigError",
    "DecodeError",
    "EncodeError",
    "InvalidKeyError",
    "InvalidTTLError",
    "LoadTimeout",
    "SerializationError",
    "SignatureError",
    "StrataCacheError",
    "TierError",
    "TierTimeoutError",
    "TierUnavailableError",
    "ValueTooLargeError",
]


class StrataCacheError(Exception):
    """Root of every exception raised by stratacache."""


class ConfigError(StrataCacheError, ValueError):
    """A bad URL, policy, codec, size, a missing optional extra or a missing signing key."""


class InvalidKeyError(StrataCacheError, ValueError):
    """A key of an unsupported type, empty, or longer than the limit."""


class InvalidTTLError(StrataCacheError, ValueError):
    """A TTL that is negative, zero, NaN, infinite, a bool or not a number."""


class ValueTooLargeError(StrataCacheError, ValueError):
    """A value heavier than the byte budget of a tier it would be stored in."""


class CodecError(StrataCacheError):
    """Serialization or deserialization failed."""


class EncodeError(CodecError, TypeError):
    """The value cannot be serialized by the cache's codec; nothing was stored."""


SerializationError = EncodeError
"""Alias of :class:`EncodeError`, the name used in the issue tracker and by some peers."""


class DecodeError(CodecError):
    """Stored bytes could not be decoded. Reads count it as an error and treat it as a miss."""


class SignatureError(DecodeError):
    """A signed payload failed its HMAC check (tampered, or signed with an unknown key)."""


class LoadTimeout(StrataCacheError, TimeoutError):  # noqa: N818 - the name the issue tracker and peers use
    """A loader outlasted the timeout of its :class:`~stratacache.LoadPolicy`.

    The hard timeout, or the soft one when a stale value could be served instead. The load goes on in the
    background and stores its result.

    Attributes:
        soft: the soft timeout expired (a stale value may be served instead).
    """

    def __init__(self, message: str, *, soft: bool = False) -> None:
        super().__init__(message)
        self.soft = soft


class TierError(StrataCacheError):
    """A tier failed (I/O error, corrupt store, timeout). Counted and never raised from reads."""


class TierTimeoutError(TierError):
    """A tier call exceeded its deadline."""


class TierUnavailableError(TierError):
    """A tier is known to be down (its circuit breaker is open)."""


class CacheClosedError(StrataCacheError):
    """The cache was used after :meth:`close`."""
