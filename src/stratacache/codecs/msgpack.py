"""MessagePack via msgspec: the default codec (fast, compact, no code execution on decode)."""

from __future__ import annotations

from typing import Any

import msgspec

from stratacache.codecs.base import sets_as_lists
from stratacache.errors import DecodeError, EncodeError

__all__ = ["MsgpackCodec"]


class MsgpackCodec:
    """MessagePack (msgspec). Tuples come back as lists and sets as lists, as with JSON."""

    __slots__ = ("_dec", "_enc")
    id = 1
    name = "msgpack"

    def __init__(self) -> None:
        self._enc = msgspec.msgpack.Encoder(enc_hook=sets_as_lists)
        self._dec = msgspec.msgpack.Decoder()

    def encode(self, value: Any, key: str) -> bytes:  # noqa: ARG002 - the key is unused by this codec
        """Serialize ``value``.

        Raises:
            EncodeError: the value (or something inside it) is not serializable.
        """
        try:
            return self._enc.encode(value)
        except (TypeError, NotImplementedError, OverflowError, msgspec.EncodeError) as exc:
            raise EncodeError(f"cannot encode value with msgpack: {exc}") from exc

    def decode(self, data: bytes, key: str) -> Any:  # noqa: ARG002
        """Deserialize.

        Raises:
            DecodeError: corrupt or truncated bytes.
        """
        try:
            return self._dec.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:  # UnicodeDecodeError too
            raise DecodeError(f"cannot decode msgpack payload: {exc}") from exc
