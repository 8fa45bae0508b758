r"""Stable, canonical cache keys (never ``hash()``: the same key in every process and every run).

A user key is a ``str`` or a tuple of ``str | int | float | bytes | bool | None``. It is encoded into a
canonical string, prefixed by the namespace. The encoding is injective: ``1``, ``1.0``, ``True`` and ``"1"``
are four different keys. ``str`` keys are stored verbatim (readable in SQLite or Redis) unless they start with
``(`` or ``\\``, which are escaped with a leading ``\\`` so that no ``str`` key collides with a tuple key.

Decorator keys are ``module.qualname`` plus a blake2b digest of the canonically encoded bound arguments, which
may also contain lists, dicts, sets, enums, dates, UUIDs and decimals.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import re
import uuid
from typing import TYPE_CHECKING, Any, Final, cast

from stratacache.errors import InvalidKeyError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "MAX_KEY_LENGTH",
    "build_key",
    "canonical_args",
    "digest_args",
    "encode_key",
    "escape_glob",
    "gen_name",
    "glob_regex",
    "key_prefix",
    "validate_namespace",
    "validate_tags",
]

MAX_KEY_LENGTH: Final = 1024
"""Longest canonical key (namespace excluded), in characters."""

_SEP: Final = ":"
_GEN_SEP: Final = "\x1f"


def _encode_part(part: object) -> str:
    t = type(part)
    if t is str:
        s: str = part  # type: ignore[assignment]
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if t is int:
        return str(part)
    if t is bool:
        return "T" if part else "F"
    if part is None:
        return "N"
    if t is float:
        return "f" + float.hex(cast("float", part))
    if t is bytes:
        return "b" + cast("bytes", part).hex()
    raise InvalidKeyError(f"unsupported key part of type {t.__name__!r}: use str, int, float, bytes, bool or None")


def encode_key(key: object) -> str:
    """Return the canonical string of a user key (without namespace).

    Raises:
        InvalidKeyError: unsupported type, empty key, or longer than :data:`MAX_KEY_LENGTH`.
    """
    if type(key) is str:
        s = key
        if not s:
            raise InvalidKeyError("empty key")
        if s[0] == "(" or s[0] == "\\":
            s = "\\" + s
    elif type(key) is tuple:
        if not key:
            raise InvalidKeyError("empty tuple key")
        s = "(" + ",".join([_encode_part(p) for p in key]) + ")"
    else:
        raise InvalidKeyError(
            f"unsupported key type {type(key).__name__!r}: use str or a tuple of str, int, float, bytes, bool or None"
        )
    if len(s) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"key longer than {MAX_KEY_LENGTH} characters ({len(s)})")
    return s


def validate_namespace(namespace: object) -> str:
    """Check a namespace: a non-empty ``str`` without control characters, at most 200 characters.

    ``/`` nests namespaces (``tenant:42/users`` is below ``tenant:42``); no level may be empty.

    Raises:
        ConfigError: the namespace is not acceptable.
    """
    from stratacache.errors import ConfigError

    if not isinstance(namespace, str) or not namespace:
        raise ConfigError("namespace must be a non-empty str")
    if len(namespace) > 200 or any(ord(c) < 32 for c in namespace):
        raise ConfigError("namespace must be at most 200 printable characters")
    if "" in namespace.split("/"):
        raise ConfigError(f"namespace {namespace!r} has an empty level: nest with single '/' (tenant:42/users)")
    return namespace


def key_prefix(namespace: str) -> str:
    r"""The prefix of every stored key of ``namespace``: the namespace with ``\`` and ``:`` escaped, then ``:``.

    Escaping keeps namespaces apart when they contain ``:``: ``("a", "b:c")`` is stored as ``a:b:c`` and
    ``("a:b", "c")`` as ``a\:b:c``.
    """
    return namespace.replace("\\", "\\\\").replace(_SEP, "\\" + _SEP) + _SEP


def build_key(namespace: str, key: object) -> str:
    """Return the stored key: :func:`key_prefix` of the namespace, then the canonical key."""
    return key_prefix(namespace) + encode_key(key)


def gen_name(namespace: str, tag: str | None = None) -> str:
    """Name of a generation counter: the namespace's own (``tag=None``) or one tag's within it."""
    if tag is None:
        return namespace
    return namespace + _GEN_SEP + tag


def validate_tags(tags: Iterable[object]) -> tuple[str, ...]:
    """Check tags: non-empty ``str`` of at most 256 characters; duplicates are dropped, order kept.

    Raises:
        InvalidKeyError: a tag is not a non-empty ``str`` or is too long.
    """
    if isinstance(tags, str):
        raise InvalidKeyError("tags must be an iterable of str, not a str")
    out: dict[str, None] = {}
    for tag in tags:
        if type(tag) is not str or not tag or len(tag) > 256:
            raise InvalidKeyError(f"invalid tag {tag!r}: tags are non-empty str of at most 256 chars")
        out[tag] = None
    return tuple(out)


# ------------------------------------------------------------------ decorator arguments


def _canon_str(v: Any) -> str:
    return "s" + str(len(v)) + ":" + str(v)


def _canon_int(v: Any) -> str:
    return "i" + str(v) + ";"


def _canon_float(v: Any) -> str:
    return "f" + float.hex(v) + ";"


def _canon_bytes(v: Any) -> str:
    return "b" + bytes(v).hex() + ";"


def _canon_seq(prefix: str) -> Callable[[Any], str]:
    def enc(v: Any) -> str:
        return prefix + "".join([canonical_arg(x) for x in v]) + "]"

    return enc


def _canon_dict(v: Any) -> str:
    items = sorted((canonical_arg(k), canonical_arg(x)) for k, x in v.items())
    return "d" + "".join(k + x for k, x in items) + "]"


def _canon_set(v: Any) -> str:
    return "S" + "".join(sorted(canonical_arg(x) for x in v)) + "]"


_CANON: Final[dict[type, Callable[[Any], str]]] = {
    str: _canon_str,
    int: _canon_int,
    float: _canon_float,
    bool: lambda v: "T" if v else "F",
    type(None): lambda _v: "N",
    bytes: _canon_bytes,
    tuple: _canon_seq("t"),
    list: _canon_seq("l"),
    dict: _canon_dict,
    set: _canon_set,
    frozenset: _canon_set,
    dt.datetime: lambda v: "D" + v.isoformat() + ";",
    dt.date: lambda v: "d" + v.isoformat() + ";",
    dt.time: lambda v: "h" + v.isoformat() + ";",
    dt.timedelta: lambda v: f"z{v.days},{v.seconds},{v.microseconds};",  # exact: no float seconds
    uuid.UUID: lambda v: "u" + v.hex + ";",
    decimal.Decimal: lambda v: "m" + str(v) + ";",
}


def canonical_arg(value: object) -> str:
    """Canonical, type-tagged encoding of one decorator argument.

    Raises:
        InvalidKeyError: the argument's type has no stable encoding (pass a key function instead).
    """
    enc = _CANON.get(type(value))
    if enc is not None:
        return enc(value)
    cls = type(value)
    if isinstance(value, enum.Enum):
        return "e" + cls.__module__ + "." + cls.__qualname__ + "." + value.name + ";"
    names: tuple[str, ...] | None = getattr(cls, "__struct_fields__", None)
    if names is None and dataclasses.is_dataclass(value):
        names = tuple(f.name for f in dataclasses.fields(value))  # real fields: no ClassVar/InitVar
    if names is not None:
        inner = "".join(_canon_str(n) + canonical_arg(getattr(value, n)) for n in names)
        return "o" + cls.__module__ + "." + cls.__qualname__ + "{" + inner + "}"
    raise InvalidKeyError(
        f"cannot build a stable cache key from an argument of type {type(value).__name__!r}; "
        "pass key= to the decorator or use a str/int/float/bytes/tuple/list/dict/enum/dataclass argument"
    )


def canonical_args(values: Iterable[object]) -> str:
    """Canonical encoding of a sequence of bound argument values."""
    return "".join([canonical_arg(v) for v in values])


def digest_args(values: Iterable[object]) -> str:
    """blake2b-128 hex digest of the canonical encoding of bound argument values."""
    return hashlib.blake2b(canonical_args(values).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def escape_glob(text: str) -> str:
    r"""Escape ``* ? [ ] \`` so that ``text`` matches itself in a Redis/SQLite GLOB pattern."""
    out = []
    for ch in text:
        if ch in "*?[]\\":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def glob_regex(pattern: str) -> re.Pattern[str]:
    r"""Compile a Redis-style glob (``*``, ``?``, ``[abc]``, ``[^a]``/``[!a]``, ``[a-z]``, ``\x``) to a regex.

    The one pattern language of :meth:`stratacache.Cache.delete_matching`, whatever the tier: Redis filters with
    it server-side only by the namespace prefix, SQLite by a key range; this regex decides.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            j = i
            if j < n and pattern[j] in "^!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal "["
                out.append(re.escape(ch))
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body[:1] in {"^", "!"}
            body = body[1:] if negate else body
            body = body.replace("\\", "\\\\").replace("]", "\\]")
            out.append(f"[{'^' if negate else ''}{body}]")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)
