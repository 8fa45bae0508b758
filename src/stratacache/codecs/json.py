"""JSON via msgspec: human-readable payloads, interoperable with non-Python readers."""

from __future__ import annotations

from typing import Any

import msgspec

from stratacache.errors import DecodeError, EncodeError

__all__ = ["JsonCodec"]


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, set | frozenset):
        return list(obj)
    raise NotImplementedError(f"objects of type {type(obj).__name__} are not serializable")


class JsonCodec:
    """UTF-8 JSON (msgspec). ``bytes`` become base64 strings; tuples and sets become lists."""

    __slots__ = ("_dec", "_enc")
    id = 2
    name = "json"

    def __init__(self) -> None:
        self._enc = msgspec.json.Encoder(enc_hook=_enc_hook)
        self._dec = msgspec.json.Decoder()

    def encode(self, value: Any, key: str) -> bytes:  # noqa: ARG002 - the key is unused by this codec
        """Serialize ``value``.

        Raises:
            EncodeError: the value is not JSON-serializable (or a float is NaN/inf).
        """
        try:
            return self._enc.encode(value)
        except (TypeError, NotImplementedError, OverflowError, ValueError, msgspec.EncodeError) as exc:
            raise EncodeError(f"cannot encode value as JSON: {exc}") from exc

    def decode(self, data: bytes, key: str) -> Any:  # noqa: ARG002
        """Deserialize.

        Raises:
            DecodeError: invalid JSON.
        """
        try:
            return self._dec.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:  # UnicodeDecodeError too
            raise DecodeError(f"cannot decode JSON payload: {exc}") from exc
