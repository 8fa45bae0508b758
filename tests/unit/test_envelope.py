"""The envelope's wire format: round trips, and every malformed input is a DecodeError."""

from __future__ import annotations

import msgspec
import pytest

from stratacache.core.envelope import ENVELOPE_FORMAT, Envelope, decode_envelope, encode_envelope
from stratacache.errors import DecodeError


def make(**overrides: object) -> Envelope[bytes]:
    fields: dict[str, object] = {
        "value": b"\x00payload\xff",
        "codec": 1 | (7 << 8),
        "created_at": 1_700_000_000.25,
        "expires_at": 1_700_000_300.25,
        "stale_until": 1_700_000_900.0,
        "delta": 0.125,
        "version": 42,
        "gens": (3, 1, 0),
        "tags": ("user:1", "org:9"),
        "size": 9,
    }
    fields.update(overrides)
    return Envelope(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "env",
    [
        make(),
        make(expires_at=None, stale_until=None),
        make(value=b"", gens=(0,), tags=()),
        make(value=bytes(range(256)) * 100, size=25600),
        make(tags=("ü\u2603", "x" * 256), gens=(2**40, 0, 1)),
    ],
)
def test_round_trip(env: Envelope[bytes]) -> None:
    data = encode_envelope(env)
    assert data[0] == ENVELOPE_FORMAT
    back = decode_envelope(data)
    assert back == env
    assert decode_envelope(memoryview(data)) == env
    assert decode_envelope(bytearray(data)) == env  # type: ignore[arg-type]


def test_every_truncation_is_a_decode_error() -> None:
    data = encode_envelope(make())
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            decode_envelope(data[:cut])


def test_trailing_garbage_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_envelope(encode_envelope(make()) + b"\x00")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x01",
        b"\x01\xff\xff\xff",
        b"\x01\xc1",
        b"\x01" + msgspec.msgpack.encode([1, 2, 3]),
        b"\x01" + msgspec.msgpack.encode({"value": b"x"}),
        b"\x01" + msgspec.msgpack.encode(["str not bytes", 1, 0.0, None, None, 0.0, 1, [0], [], 1]),
        b"\x01" + msgspec.msgpack.encode([b"v", "codec", 0.0, None, None, 0.0, 1, [0], [], 1]),
        b"\x01" + msgspec.msgpack.encode([b"v", 1, 0.0, None, None, 0.0, 1, [0], [1], 1]),
    ],
)
def test_garbage_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_envelope(data)


@pytest.mark.parametrize("first", [0, 2, 0x81, 0xFF])
def test_foreign_format_byte_is_a_decode_error(first: int) -> None:
    data = encode_envelope(make())
    with pytest.raises(DecodeError):
        decode_envelope(bytes([first]) + data[1:])


def test_foreign_formats_are_decode_errors() -> None:
    for foreign in (b"\x80\x04\x95", b'{"value": 1}', msgspec.msgpack.encode(make())):
        with pytest.raises(DecodeError):
            decode_envelope(foreign)


def test_envelopes_are_frozen() -> None:
    env = make()
    with pytest.raises(AttributeError):
        env.value = b"other"  # type: ignore[misc]
