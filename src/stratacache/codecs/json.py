"""JSON via msgspec: human-readable payloads, interoperable with non-Python readers."""

from __future__ import annotations

import math
from typing import Any

import msgspec

from stratacache.codecs.base import sets_as_lists
from stratacache.errors import DecodeError, EncodeError

__all__ = ["JsonCodec"]


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_non_finite(v) for v in value)
    fields = getattr(type(value), "__struct_fields__", None)
    if fields is not None:
        return any(_has_non_finite(getattr(value, f)) for f in fields)
    return False


class JsonCodec:
    """UTF-8 JSON (msgspec). ``bytes`` become base64 strings; tuples and sets become lists."""

    __slots__ = ("_dec", "_enc")
    id = 2
    name = "json"

    def __init__(self) -> None:
        self._enc = msgspec.json.Encoder(enc_hook=sets_as_lists)
        self._dec = msgspec.json.Decoder()

    def encode(self, value: Any, key: str) -> bytes:  # noqa: ARG002 - the key is unused by this codec
        """Serialize ``value``.

        Raises:
            EncodeError: the value is not JSON-serializable (or a float is NaN/inf).
        """
        try:
            data = self._enc.encode(value)
        except (TypeError, NotImplementedError, OverflowError, ValueError, msgspec.EncodeError) as exc:
            raise EncodeError(f"cannot encode value as JSON: {exc}") from exc
        if b"null" in data and _has_non_finite(value):  # msgspec writes NaN/inf as null: refuse, don't corrupt
            raise EncodeError("cannot encode NaN or infinity as JSON")
        return data

    def decode(self, data: bytes, key: str) -> Any:  # noqa: ARG002
        """Deserialize.

        Raises:
            DecodeError: invalid JSON.
        """
        try:
            return self._dec.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:  # UnicodeDecodeError too
            raise DecodeError(f"cannot decode JSON payload: {exc}") from exc
