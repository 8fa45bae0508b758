"""Pure validation and parsing of configuration: TTLs, sizes, booleans and tier URLs."""

from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Final

from stratacache.errors import ConfigError, InvalidTTLError

__all__ = [
    "SECRET_PARAMS",
    "TierURL",
    "parse_bool",
    "parse_int",
    "parse_size",
    "parse_tier_url",
    "redact_url",
    "validate_ttl",
]

_UNITS: Final = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: object, *, what: str = "size") -> int:
    """Parse a byte size: a positive ``int`` or a string such as ``"256MiB"``, ``"1.5GB"``, ``"4096"``.

    Raises:
        ConfigError: not a positive size.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be a size such as 1048576 or '256MiB', not a bool")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        m = _SIZE_RE.match(value)
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _UNITS:
            raise ConfigError(f"{what}: cannot parse size {value!r} (use e.g. 1048576, '64KiB', '256MiB')")
        size = int(float(m.group(1)) * _UNITS[unit])
    else:
        raise ConfigError(f"{what} must be an int or a str such as '256MiB', not {type(value).__name__}")
    if size <= 0:
        raise ConfigError(f"{what} must be positive, got {value!r}")
    return size


def parse_int(value: object, *, what: str, minimum: int = 1) -> int:
    """Parse a positive integer from an ``int`` or a decimal string.

    Raises:
        ConfigError: not an integer, or below ``minimum``.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be an integer, not a bool")
    if isinstance(value, str):
        try:
            value = int(value.replace("_", ""))
        except ValueError:
            raise ConfigError(f"{what}: {value!r} is not an integer") from None
    if not isinstance(value, int):
        raise ConfigError(f"{what} must be an integer, not {type(value).__name__}")
    if value < minimum:
        raise ConfigError(f"{what} must be >= {minimum}, got {value}")
    return value


def parse_bool(value: object, *, what: str) -> bool:
    """Parse a boolean from a ``bool`` or the strings ``1/0, true/false, yes/no, on/off``.

    Raises:
        ConfigError: not a boolean.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in {"1", "true", "yes", "on"}:
            return True
        if low in {"0", "false", "no", "off"}:
            return False
    raise ConfigError(f"{what}: {value!r} is not a boolean (use true/false)")


def validate_ttl(ttl: object, *, allow_none: bool = True) -> float | None:
    """Check a TTL in seconds: a finite positive ``int``/``float``, or ``None`` where allowed.

    Raises:
        InvalidTTLError: negative, zero, NaN, infinite, a bool, or not a number.
    """
    if ttl is None:
        if allow_none:
            return None
        raise InvalidTTLError("ttl is required here")
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise InvalidTTLError(f"ttl must be a number of seconds, not {type(ttl).__name__}")
    if math.isnan(ttl) or math.isinf(ttl):
        raise InvalidTTLError(f"ttl must be finite, got {ttl!r} (use ttl=None for no expiry)")
    if ttl <= 0:
        raise InvalidTTLError(f"ttl must be positive, got {ttl!r}")
    return float(ttl)


@dataclass(frozen=True, slots=True)
class TierURL:
    """A parsed tier URL: scheme, path (for file-backed tiers) and query parameters."""

    scheme: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    netloc: str = ""


SECRET_PARAMS: Final = frozenset({"password", "sentinel_password"})


def redact_url(url: object) -> str:
    """``repr`` of a URL with its password (in the user info or a ``*password=`` parameter) replaced by ``***``."""
    if not isinstance(url, str):
        return repr(url)
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None:
        userinfo, _, hosts = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        parts = parts._replace(netloc=f"{user}:***@{hosts}")
    if parts.query:
        pairs = [p.partition("=") for p in parts.query.split("&")]
        secret = {urllib.parse.unquote(name) for name, _, _ in pairs} & SECRET_PARAMS
        if secret:
            query = "&".join(
                f"{name}{sep}***" if urllib.parse.unquote(name) in SECRET_PARAMS else f"{name}{sep}{value}"
                for name, sep, value in pairs
            )
            parts = parts._replace(query=query)
    return repr(urllib.parse.urlunsplit(parts))


def parse_tier_url(url: object) -> TierURL:
    """Split a tier URL such as ``memory://?max_entries=1000`` or ``sqlite:///var/cache/app.db``.

    Raises:
        ConfigError: not a string, no scheme, or a query parameter repeated.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"tier URL must be a non-empty str, got {redact_url(url)}")
    parts = urllib.parse.urlsplit(url.strip())
    if not parts.scheme or "://" not in url:
        raise ConfigError(f"tier URL {redact_url(url)} has no scheme (expected e.g. 'memory://' or 'sqlite:///path')")
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False)
    params: dict[str, str] = {}
    for k, v in pairs:
        if k in params:
            raise ConfigError(f"tier URL {redact_url(url)}: parameter {k!r} given twice")
        params[k] = v
    return TierURL(
        scheme=parts.scheme.lower(), path=urllib.parse.unquote(parts.path), params=params, netloc=parts.netloc
    )
