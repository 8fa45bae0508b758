"""Property tests: codecs round-trip JSON-like values; keys and decorator digests are injective.

"Different" keys are compared by a type-strict identity (``1``, ``1.0``, ``True`` and ``"1"`` are four keys,
``0.0`` and ``-0.0`` two), because the key encoding promises exactly that: never a stale lie from two keys
sharing one entry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import enum
import math
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stratacache.codecs import JsonCodec, MsgpackCodec, SignedPickleCodec, resolve_codec
from stratacache.core.envelope import Envelope, decode_envelope, encode_envelope
from stratacache.core.keys import (
    MAX_KEY_LENGTH,
    build_key,
    canonical_args,
    digest_args,
    encode_key,
)
from stratacache.errors import DecodeError, InvalidKeyError, SignatureError

if TYPE_CHECKING:
    from collections.abc import Callable

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------- helpers


def same(a: Any, b: Any) -> bool:
    """Type-strict structural equality: ``1 != 1.0 != True``, ``0.0 != -0.0``, ``list != tuple``."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return float.hex(a) == float.hex(b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def ident(value: Any) -> Any:
    """A hashable, type-tagged identity of a key or argument (what "different" means for injectivity)."""
    t = type(value)
    if t is float:
        return ("float", float.hex(value))
    if t is tuple:
        return ("tuple", tuple(ident(v) for v in value))
    if t is list:
        return ("list", tuple(ident(v) for v in value))
    if t is dict:
        return ("dict", frozenset((ident(k), ident(v)) for k, v in value.items()))
    if t in {set, frozenset}:
        return (t.__name__, frozenset(ident(v) for v in value))
    return (t.__name__, value)


# ---------------------------------------------------------------------------------------------- values

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | finite_floats
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)
msgpack_values = st.recursive(
    json_scalars | st.binary(max_size=20) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)


@SETTINGS
@given(value=msgpack_values)
def test_msgpack_round_trips(value: Any) -> None:
    codec = MsgpackCodec()
    assert same(codec.decode(codec.encode(value, "k"), "k"), value)


@SETTINGS
@given(value=json_values)
def test_json_round_trips(value: Any) -> None:
    codec = JsonCodec()
    assert same(codec.decode(codec.encode(value, "k"), "k"), value)


@SETTINGS
@given(value=msgpack_values)
def test_zstd_wrapped_msgpack_round_trips(value: Any) -> None:
    codec = resolve_codec("msgpack+zstd")
    assert same(codec.decode(codec.encode(value, "k"), "k"), value)
    big = [value] * 200  # above the compression threshold
    assert same(codec.decode(codec.encode(big, "k"), "k"), big)


@SETTINGS
@given(value=msgpack_values, key=st.text(min_size=1, max_size=20))
def test_signed_pickle_round_trips_and_binds_the_key(value: Any, key: str) -> None:
    codec = SignedPickleCodec("0123456789abcdef-secret")
    data = codec.encode(value, key)
    assert same(codec.decode(data, key), value)
    with pytest.raises(SignatureError):
        codec.decode(data, key + "x")  # a value cannot be moved to another key


def _flip(data: bytes, pos: int, byte: int) -> bytes:
    pos %= len(data)
    return data[:pos] + bytes([byte]) + data[pos + 1 :]


@SETTINGS
@given(
    data=st.binary(max_size=64)
    # valid payloads with one byte flipped: bad UTF-8 inside a str, wrong lengths, truncation
    | st.tuples(msgpack_values, st.integers(0, 63), st.integers(0, 255)).map(
        lambda t: _flip(MsgpackCodec().encode(t[0], "k"), t[1], t[2])
    )
)
def test_decoding_garbage_raises_only_decode_error(data: bytes) -> None:
    for codec in (MsgpackCodec(), JsonCodec()):
        with contextlib.suppress(DecodeError):  # a miss; anything else would escape a read
            codec.decode(data, "k")
    with contextlib.suppress(DecodeError):
        decode_envelope(data)
    with contextlib.suppress(DecodeError):
        decode_envelope(b"\x01" + data)


@SETTINGS
@given(data=st.binary(max_size=64), key=st.text(min_size=1, max_size=8))
def test_signed_pickle_rejects_garbage_with_decode_error_only(data: bytes, key: str) -> None:
    codec = SignedPickleCodec("0123456789abcdef-secret")
    with pytest.raises(DecodeError):  # never unpickled: the signature cannot match
        codec.decode(data, key)


@SETTINGS
@given(value=st.binary(max_size=40), cut=st.integers(min_value=0, max_value=200))
def test_truncated_envelopes_never_decode_to_something_else(value: bytes, cut: int) -> None:
    env = Envelope(value, 1, 1.0, 2.0, None, 0.0, 7, (0, 1), ("t",), len(value))
    blob = encode_envelope(env)
    assert decode_envelope(blob) == env
    assume(cut < len(blob))
    try:
        back = decode_envelope(blob[:cut])
    except DecodeError:
        return
    raise AssertionError(f"a truncated envelope decoded: {back!r}")


# ---------------------------------------------------------------------------------------------- keys

key_parts = (
    st.text(max_size=12)
    | st.integers()
    | st.floats()
    | st.binary(max_size=8)
    | st.booleans()
    | st.none()
    # characters the encoding treats specially
    | st.sampled_from(["'", "\\", ",", "(", ")", "\\'", "','", "N", "T", "F", "f0x1.0p+0", "b00"])
)
str_keys = st.text(min_size=1, max_size=20) | st.sampled_from(
    ["(", "\\", "\\(", "(1)", "('a')", "\\\\", "(N)", "(T,F)"]
)
user_keys = str_keys | st.lists(key_parts, min_size=1, max_size=4).map(tuple)


def encode_or_none(key: Any) -> str | None:
    try:
        return encode_key(key)
    except InvalidKeyError:
        return None


def lookalikes(key: Any) -> list[Any]:
    """Keys that a careless encoding would confuse with ``key`` (same text, same numeric value...)."""
    out: list[Any] = [str(key), repr(key)]
    if type(key) is str:
        out += [(key,), "(" + key, "\\" + key, key.replace("\\", "")]
        return out
    for i, part in enumerate(key):
        swaps: list[Any] = [str(part), repr(part), (part,), None, "N", b"" if part == "" else ""]
        if type(part) in {int, bool}:
            swaps += [int(part), float(part), bool(part)]
        if type(part) is float and part.is_integer():
            swaps += [int(part), -part]
        if type(part) is str:
            swaps += [part.encode(), "'" + part + "'", part + ","]
        if type(part) is bytes:
            swaps += [part.hex(), part.decode("latin-1")]
        out += [(*key[:i], s, *key[i + 1 :]) for s in swaps]
    out += [(*key, None), key[:-1], ",".join(map(str, key))]
    return out


@settings(max_examples=1000, deadline=None)
@given(keys=st.lists(user_keys, min_size=2, max_size=8))
def test_key_encoding_is_injective(keys: list[Any]) -> None:
    candidates = [k for key in keys for k in [key, *lookalikes(key)]]
    seen: dict[str, Any] = {}
    for key in candidates:
        encoded = encode_or_none(key)
        if encoded is None:
            continue
        if encoded in seen:
            assert ident(seen[encoded]) == ident(key), (seen[encoded], key, encoded)
        seen[encoded] = key


@SETTINGS
@given(key=user_keys)
def test_key_encoding_is_deterministic_and_bounded(key: Any) -> None:
    encoded = encode_or_none(key)
    assume(encoded is not None)
    assert encoded == encode_or_none(key)
    assert 0 < len(encoded) <= MAX_KEY_LENGTH
    assert build_key("ns", key) == "ns:" + encoded


@SETTINGS
@given(parts=st.lists(key_parts, min_size=1, max_size=4))
def test_tuple_keys_never_collide_with_str_keys(parts: list[Any]) -> None:
    encoded = encode_or_none(tuple(parts))
    assume(encoded is not None)
    # the str whose verbatim text equals the tuple's encoding is escaped, so it is another key
    assert encode_key(encoded) != encoded


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((1,), (1.0,)),
        ((1,), (True,)),
        ((0,), (False,)),
        ((0.0,), (-0.0,)),
        ((1,), ("1",)),
        ((None,), ("N",)),
        (("a,b",), ("a", "b")),
        (("a'", "b"), ("a", "'b")),
        ((b"\x00",), ("00",)),
        ("(1)", (1,)),
        ("\\(1)", "(1)"),
    ],
)
def test_known_lookalike_keys_are_distinct(a: Any, b: Any) -> None:
    assert encode_key(a) != encode_key(b)


# ---------------------------------------------------------------------------------------------- decorator digests


class Colour(enum.Enum):
    RED = 1
    GREEN = 2


@dataclass(frozen=True)
class Point:
    x: int
    y: str


arg_scalars = (
    st.text(max_size=8)
    | st.integers()
    | st.floats()
    | st.binary(max_size=6)
    | st.booleans()
    | st.none()
    | st.dates()
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.times()
    # within +-100 years: total_seconds() is exact to the microsecond there
    | st.timedeltas(min_value=dt.timedelta(days=-36_500), max_value=dt.timedelta(days=36_500))
    | st.uuids()
    | st.decimals(allow_nan=False, places=3, min_value=-1000, max_value=1000)
    | st.sampled_from(list(Colour))
    | st.builds(Point, st.integers(-5, 5), st.text(max_size=3))
)
hashable_args = arg_scalars.filter(lambda v: not (isinstance(v, float) and math.isnan(v)))
arg_values = st.recursive(
    arg_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=4) | st.integers(-3, 3), inner, max_size=3)
        | st.frozensets(hashable_args, max_size=3)
    ),
    max_leaves=12,
)
arg_lists = st.lists(arg_values, max_size=3)


_ARG_IDENT: dict[type, Callable[[Any], Any]] = {
    float: float.hex,
    dt.datetime: dt.datetime.isoformat,
    dt.time: dt.time.isoformat,
    decimal.Decimal: str,
    uuid.UUID: lambda v: v.hex,
}


def arg_ident(value: Any) -> Any:
    """Type-strict identity of a decorator argument (what "the same arguments" means)."""
    t = type(value)
    if t is tuple or t is list:
        return (t.__name__, tuple(arg_ident(v) for v in value))
    if t is dict:
        return ("dict", frozenset((arg_ident(k), arg_ident(v)) for k, v in value.items()))
    if t in {set, frozenset}:
        return ("set", frozenset(arg_ident(v) for v in value))
    return (t.__name__, _ARG_IDENT.get(t, lambda v: v)(value))


def arg_lookalikes(value: Any) -> list[Any]:
    """Arguments a careless canonical form would confuse with ``value``."""
    t = type(value)
    out: list[Any] = [str(value), repr(value)]
    if t is list:
        out += [tuple(value), set(map(repr, value)), [*value, None], value[:-1]]
        out += [[*value[:i], y, *value[i + 1 :]] for i, x in enumerate(value) for y in arg_lookalikes(x)[:4]]
    elif t is tuple:
        out += [list(value), (*value, None)]
    elif t is dict:
        out += [list(value.items()), list(value), {repr(k): v for k, v in value.items()}]
    elif t in {int, bool}:
        out += [int(value), float(value), bool(value), decimal.Decimal(int(value))]
    elif t is float and value.is_integer():
        out += [int(value), -value, decimal.Decimal(value)]
    elif t is str:
        out += [value.encode(), value + "\x00", f"s{len(value)}:{value}"]
    elif t is dt.datetime:
        out += [value.date(), value.replace(tzinfo=None), value.isoformat()]
    elif t is dt.timedelta:
        out += [value.total_seconds(), value + dt.timedelta(microseconds=1)]
    elif t is Point:
        out += [(value.x, value.y), {"x": value.x, "y": value.y}]
    elif t is Colour:
        out += [value.value, value.name]
    return out


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=st.lists(arg_lists, min_size=2, max_size=5))
def test_digest_equal_iff_canonical_equal_iff_same_arguments(calls: list[list[Any]]) -> None:
    candidates = list(calls)
    for args in calls:
        candidates += [[*args[:i], y, *args[i + 1 :]] for i, x in enumerate(args) for y in arg_lookalikes(x)]
    by_canonical: dict[str, list[Any]] = {}
    by_digest: dict[str, str] = {}
    for args in candidates:
        canonical = canonical_args(args)
        digest = digest_args(args)
        if canonical in by_canonical:
            assert arg_ident(by_canonical[canonical]) == arg_ident(args), (by_canonical[canonical], args)
        by_canonical[canonical] = args
        # digest equality iff canonical equality
        assert by_digest.setdefault(digest, canonical) == canonical
    assert len(by_digest) == len(by_canonical)


@SETTINGS
@given(a=arg_lists)
def test_digest_is_stable_and_ignores_dict_and_set_order(a: list[Any]) -> None:
    def reorder(v: Any) -> Any:
        if type(v) is dict:
            return {k: reorder(v[k]) for k in reversed(list(v))}
        if type(v) is list:
            return [reorder(x) for x in v]
        if type(v) is tuple:
            return tuple(reorder(x) for x in v)
        return v

    assert digest_args(a) == digest_args(reorder(a))
    assert len(digest_args(a)) == 32


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([1], [1.0]),
        ([1], [True]),
        ([1], ["1"]),
        ([[1, 2]], [(1, 2)]),
        ([{"a": 1}], [[("a", 1)]]),
        (["ab", "c"], ["a", "bc"]),
        ([dt.date(2024, 1, 2)], [dt.datetime(2024, 1, 2)]),  # noqa: DTZ001 - naive on purpose
        ([Colour.RED], [1]),
        ([Point(1, "a")], [(1, "a")]),
        ([decimal.Decimal("1.0")], [1.0]),
    ],
)
def test_known_lookalike_arguments_have_distinct_digests(a: list[Any], b: list[Any]) -> None:
    assert digest_args(a) != digest_args(b)
