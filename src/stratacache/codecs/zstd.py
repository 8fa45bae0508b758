"""Optional zstd compression above a size threshold, wrapping another codec (``stratacache[zstd]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stratacache.errors import ConfigError, DecodeError

if TYPE_CHECKING:
    from stratacache._types import Codec

__all__ = ["ZstdCodec"]

_RAW = 0
_ZSTD = 1


class ZstdCodec:
    """Compress the inner codec's output with zstd when it is at least ``threshold`` bytes.

    The codec id is the inner id with the high bit set, so compressed and plain envelopes never mix up.
    """

    __slots__ = ("_cctx", "_dctx", "_inner", "_threshold", "id", "name")

    def __init__(self, inner: Codec, *, threshold: int = 1024, level: int = 3) -> None:
        try:
            import zstandard
        except ImportError:  # pragma: no cover - depends on the environment
            raise ConfigError("zstd compression needs the extra: pip install 'stratacache[zstd]'") from None
        if inner.id >= 128:
            raise ConfigError("cannot wrap a codec whose id is already >= 128")
        self._inner = inner
        self._threshold = threshold
        self._cctx = zstandard.ZstdCompressor(level=level)
        self._dctx = zstandard.ZstdDecompressor()
        self.id = inner.id | 0x80
        self.name = inner.name + "+zstd"

    def encode(self, value: Any, key: str) -> bytes:
        """Encode with the inner codec, then compress if large enough."""
        data = self._inner.encode(value, key)
        if len(data) >= self._threshold:
            return bytes([_ZSTD]) + self._cctx.compress(data)
        return bytes([_RAW]) + data

    def decode(self, data: bytes, key: str) -> Any:
        """Decompress if needed, then decode with the inner codec."""
        if not data:
            raise DecodeError("empty payload")
        body = data[1:]
        if data[0] == _ZSTD:
            try:
                body = self._dctx.decompress(body)
            except Exception as exc:
                raise DecodeError(f"cannot decompress zstd payload: {exc}") from exc
        elif data[0] != _RAW:
            raise DecodeError("unknown compression flag")
        return self._inner.decode(body, key)
