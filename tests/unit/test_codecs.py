"""Codecs: msgpack and JSON round trips and errors, signed pickle, zstd compression, codec selection."""

from __future__ import annotations

import datetime as dt
import pickle
from typing import Any

import pytest

import stratacache as sc
from stratacache.codecs import JsonCodec, MsgpackCodec, SignedPickleCodec, ZstdCodec, resolve_codec
from stratacache.codecs.base import SIGNING_KEY_ENV
from stratacache.errors import ConfigError, DecodeError, EncodeError, SignatureError
from stratacache.testing import FakeClock

SECRET = "s3cret-s3cret-s3cret-0001"
OTHER_SECRET = "another-secret-entirely-02"
KEY = "ns:user:42"

# ------------------------------------------------------------------ msgpack and JSON

PORTABLE = [
    None,
    True,
    False,
    0,
    -(2**63),
    2**64 - 1,
    1.5,
    -0.0,
    "",
    "héllo \u2603 \U0001f600",
    [],
    {},
    [1, "two", None, [3.0, {"four": [5]}]],
    {"a": {"b": {"c": [1, 2, 3]}}, "": None},
]


@pytest.mark.parametrize("codec", [MsgpackCodec(), JsonCodec()], ids=["msgpack", "json"])
@pytest.mark.parametrize("value", PORTABLE)
def test_round_trip(codec: sc.Codec, value: Any) -> None:
    data = codec.encode(value, KEY)
    assert isinstance(data, bytes)
    assert codec.decode(data, KEY) == value


def test_msgpack_specifics() -> None:
    c = MsgpackCodec()
    assert c.decode(c.encode(b"\x00\xff", KEY), KEY) == b"\x00\xff"
    assert c.decode(c.encode((1, 2), KEY), KEY) == [1, 2]
    assert sorted(c.decode(c.encode({3, 1, 2}, KEY), KEY)) == [1, 2, 3]
    assert c.decode(c.encode({1: "int key"}, KEY), KEY) == {1: "int key"}


def test_json_specifics() -> None:
    c = JsonCodec()
    assert c.encode({"a": [1, 2]}, KEY) == b'{"a":[1,2]}'
    assert c.decode(c.encode((1, 2), KEY), KEY) == [1, 2]
    assert sorted(c.decode(c.encode(frozenset({1, 2}), KEY), KEY)) == [1, 2]


class Unserializable:
    pass


@pytest.mark.parametrize("codec", [MsgpackCodec(), JsonCodec()], ids=["msgpack", "json"])
@pytest.mark.parametrize("value", [Unserializable(), object(), {"nested": [Unserializable()]}, lambda: 1])
def test_unserializable_raises_encode_error(codec: sc.Codec, value: Any) -> None:
    with pytest.raises(EncodeError) as info:
        codec.encode(value, KEY)
    assert isinstance(info.value, sc.SerializationError)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, sc.CodecError)


def test_json_refuses_non_str_container_keys() -> None:
    with pytest.raises(EncodeError):
        JsonCodec().encode({(1, 2): "tuple key"}, KEY)


def test_msgpack_out_of_range_int() -> None:
    with pytest.raises(EncodeError):
        MsgpackCodec().encode(2**64, KEY)


def test_serialization_error_is_the_encode_error_alias() -> None:
    assert sc.SerializationError is sc.EncodeError


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x92\x01", b"\xdb\x00\x00\x00\x10abc", b"\x01\x02"])
def test_corrupt_msgpack_raises_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        MsgpackCodec().decode(data, KEY)


@pytest.mark.parametrize("data", [b"", b"{", b'{"a":', b"\xff\xfe", b"nul", b"[1,]", b"1 2"])
def test_corrupt_json_raises_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        JsonCodec().decode(data, KEY)


def test_unserializable_value_changes_nothing_in_the_cache() -> None:
    with sc.Cache(sc.MemoryTier(max_entries=10), clock=FakeClock()) as cache:
        cache.set("k", "old")
        with pytest.raises(sc.SerializationError):
            cache.set("k", Unserializable())
        with pytest.raises(EncodeError):
            cache.set_many({"a": 1, "k": Unserializable()})
        assert cache.get("k") == "old"
        assert cache.get("a", "absent") == "absent"


# ------------------------------------------------------------------ signed pickle

TRIGGERED: list[str] = []


def _gadget(tag: str) -> str:
    TRIGGERED.append(tag)
    return tag


class Gadget:
    """Unpickling this object calls :func:`_gadget`: a stand-in for a remote-code-execution payload."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_gadget, (self.tag,))


@pytest.fixture(autouse=True)
def _reset_gadget() -> None:
    TRIGGERED.clear()


class Record:
    def __init__(self, name: str, when: dt.datetime) -> None:
        self.name = name
        self.when = when

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and (self.name, self.when) == (other.name, other.when)

    __hash__ = None  # type: ignore[assignment]


def test_pickle_round_trip_of_python_objects() -> None:
    c = SignedPickleCodec(SECRET)
    values = [
        Record("ada", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
        {1, 2, 3},
        (1, "x", b"y"),
        {("a", 1): frozenset({2})},
        None,
    ]
    for v in values:
        assert c.decode(c.encode(v, KEY), KEY) == v


def test_pickle_requires_a_long_enough_secret() -> None:
    with pytest.raises(ConfigError):
        SignedPickleCodec("short")
    with pytest.raises(ConfigError):
        SignedPickleCodec({})
    with pytest.raises(ConfigError):
        SignedPickleCodec({"a": SECRET, "b": OTHER_SECRET})  # several keys, none named current
    with pytest.raises(ConfigError):
        SignedPickleCodec({"a": SECRET}, current="b")


def test_codec_pickle_without_signing_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=SIGNING_KEY_ENV):
        resolve_codec("pickle")
    with pytest.raises(ConfigError):
        sc.Cache(sc.MemoryTier(max_entries=10), codec="pickle")
    monkeypatch.setenv(SIGNING_KEY_ENV, "")
    with pytest.raises(ConfigError):
        sc.Cache(sc.MemoryTier(max_entries=10), codec="pickle")


def test_codec_pickle_with_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_KEY_ENV, SECRET)
    codec = resolve_codec("pickle")
    assert isinstance(codec, SignedPickleCodec)
    with sc.Cache(sc.MemoryTier(max_entries=10), codec="pickle", clock=FakeClock()) as cache:
        rec = Record("ada", dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        cache.set("r", rec)
        assert cache.get("r") == rec


def test_gadget_really_runs_when_unpickled_unchecked() -> None:
    # guards the tests below: the payload is a working gadget, so "not triggered" means "never unpickled"
    pickle.loads(pickle.dumps(Gadget("control")))
    assert TRIGGERED == ["control"]
    TRIGGERED.clear()
    c = SignedPickleCodec(SECRET)
    assert c.decode(c.encode(Gadget("signed"), KEY), KEY) == "signed"
    assert TRIGGERED == ["signed"]


def _flip(data: bytes, index: int) -> bytes:
    b = bytearray(data)
    b[index] ^= 0x01
    return bytes(b)


def test_tampered_payload_is_never_unpickled() -> None:
    c = SignedPickleCodec(SECRET)
    data = c.encode(Gadget("tampered"), KEY)
    kid_len = data[1]
    mac_start = 2 + kid_len
    payload_start = mac_start + 32
    for index in (mac_start, mac_start + 31, payload_start, len(data) - 1):
        with pytest.raises(SignatureError):
            c.decode(_flip(data, index), KEY)
    assert TRIGGERED == []


def test_payload_signed_with_another_secret_is_never_unpickled() -> None:
    forger = SignedPickleCodec(OTHER_SECRET)  # same key id ("default"), wrong secret
    data = forger.encode(Gadget("forged"), KEY)
    with pytest.raises(SignatureError):
        SignedPickleCodec(SECRET).decode(data, KEY)
    assert TRIGGERED == []


def test_raw_pickle_from_the_store_is_refused() -> None:
    c = SignedPickleCodec(SECRET)
    raw = pickle.dumps(Gadget("raw"))
    with pytest.raises(DecodeError):
        c.decode(raw, KEY)
    # a forged header around a raw pickle: format byte, key id, zero MAC
    forged = bytes([1, 7]) + b"default" + bytes(32) + raw
    with pytest.raises(SignatureError):
        c.decode(forged, KEY)
    assert TRIGGERED == []


def test_value_moved_to_another_key_is_refused() -> None:
    c = SignedPickleCodec(SECRET)
    data = c.encode(Gadget("moved"), "ns:user:1")
    with pytest.raises(SignatureError):
        c.decode(data, "ns:user:2")
    with pytest.raises(SignatureError):
        c.decode(data, "other:user:1")
    assert TRIGGERED == []


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x02\x00" + bytes(40), b"\x01\x07default" + bytes(10)])
def test_truncated_or_foreign_signed_data(data: bytes) -> None:
    with pytest.raises(DecodeError):
        SignedPickleCodec(SECRET).decode(data, KEY)


def test_signature_error_is_a_decode_error() -> None:
    assert issubclass(SignatureError, DecodeError)


def test_key_rotation() -> None:
    old = SignedPickleCodec({"k1": SECRET})
    rotated = SignedPickleCodec({"k1": SECRET, "k2": OTHER_SECRET}, current="k2")
    retired = SignedPickleCodec({"k2": OTHER_SECRET})

    old_data = old.encode({"v": 1}, KEY)
    assert rotated.decode(old_data, KEY) == {"v": 1}  # the old key id still verifies

    new_data = rotated.encode({"v": 2}, KEY)
    kid_len = new_data[1]
    assert new_data[2 : 2 + kid_len] == b"k2"  # new values are signed with the current id
    assert old_data[2 : 2 + old_data[1]] == b"k1"
    assert retired.decode(new_data, KEY) == {"v": 2}

    with pytest.raises(SignatureError):
        old.decode(new_data, KEY)  # k2 unknown to the old deployment
    with pytest.raises(SignatureError):
        retired.decode(old_data, KEY)  # k1 retired


def test_rotation_does_not_accept_a_known_id_with_the_wrong_secret() -> None:
    a = SignedPickleCodec({"k1": SECRET})
    b = SignedPickleCodec({"k1": OTHER_SECRET})
    with pytest.raises(SignatureError):
        b.decode(a.encode(1, KEY), KEY)


def test_keys_from_the_environment_value() -> None:
    single = SignedPickleCodec.from_env_value(SECRET)
    assert single.decode(single.encode(1, KEY), KEY) == 1
    multi = SignedPickleCodec.from_env_value(f"k2:{OTHER_SECRET},k1:{SECRET}")
    data = multi.encode(1, KEY)
    assert data[2 : 2 + data[1]] == b"k2"  # the first id signs
    assert multi.decode(SignedPickleCodec({"k1": SECRET}).encode(3, KEY), KEY) == 3
    with pytest.raises(ConfigError):
        SignedPickleCodec.from_env_value(f"k1:{SECRET},k2")


def test_unpicklable_value_raises_encode_error() -> None:
    with pytest.raises(EncodeError):
        SignedPickleCodec(SECRET).encode(lambda: 1, KEY)


# ------------------------------------------------------------------ zstd


def test_zstd_compresses_large_values_and_round_trips() -> None:
    c = ZstdCodec(MsgpackCodec(), threshold=1024)
    assert c.id == MsgpackCodec.id | 0x80
    assert c.name == "msgpack+zstd"
    big = {"rows": ["the same row again"] * 500}
    plain = MsgpackCodec().encode(big, KEY)
    data = c.encode(big, KEY)
    assert data[0] == 1
    assert len(data) < len(plain) // 5
    assert c.decode(data, KEY) == big


def test_zstd_leaves_small_values_uncompressed() -> None:
    c = ZstdCodec(MsgpackCodec(), threshold=1024)
    small = {"a": 1}
    data = c.encode(small, KEY)
    assert data[0] == 0
    assert data[1:] == MsgpackCodec().encode(small, KEY)
    assert c.decode(data, KEY) == small


def test_zstd_threshold_boundary() -> None:
    inner = MsgpackCodec()
    value = "x" * 100
    size = len(inner.encode(value, KEY))
    assert ZstdCodec(inner, threshold=size).encode(value, KEY)[0] == 1
    assert ZstdCodec(inner, threshold=size + 1).encode(value, KEY)[0] == 0


@pytest.mark.parametrize("data", [b"", b"\x02abc", b"\x01not zstd at all", b"\x01\x28\xb5\x2f\xfd"])
def test_zstd_corrupt_data(data: bytes) -> None:
    with pytest.raises(DecodeError):
        ZstdCodec(MsgpackCodec()).decode(data, KEY)


def test_zstd_over_signed_pickle_keeps_the_signature_check() -> None:
    c = ZstdCodec(SignedPickleCodec(SECRET), threshold=16)
    data = c.encode(Gadget("zipped"), "k1")
    with pytest.raises(SignatureError):
        c.decode(data, "k2")
    assert TRIGGERED == []


def test_zstd_cannot_wrap_itself() -> None:
    with pytest.raises(ConfigError):
        ZstdCodec(ZstdCodec(MsgpackCodec()))


# ------------------------------------------------------------------ selection


def test_resolve_codec_by_name() -> None:
    assert isinstance(resolve_codec("msgpack"), MsgpackCodec)
    assert isinstance(resolve_codec(" JSON "), JsonCodec)
    z = resolve_codec("json+zstd")
    assert isinstance(z, ZstdCodec)
    assert z.id == JsonCodec.id | 0x80


def test_resolve_codec_passes_codec_objects_through() -> None:
    c = MsgpackCodec()
    assert resolve_codec(c) is c


class _BadIdCodec:
    name = "bad"

    def __init__(self, id_: object) -> None:
        self.id = id_

    def encode(self, value: Any, key: str) -> bytes:
        return b""

    def decode(self, data: bytes, key: str) -> Any:
        return None


@pytest.mark.parametrize("bad", ["yaml", "msgpack+gzip", "", 3, None, _BadIdCodec(0), _BadIdCodec(256)])
def test_resolve_codec_errors(bad: object) -> None:
    with pytest.raises(ConfigError):
        resolve_codec(bad)  # type: ignore[arg-type]


def test_codec_ids_are_distinct() -> None:
    ids = [MsgpackCodec.id, JsonCodec.id, SignedPickleCodec.id]
    ids += [i | 0x80 for i in ids]
    assert len(set(ids)) == len(ids)
    assert all(0 < i < 256 for i in ids)


def test_entries_written_with_another_codec_are_misses(tmp_path: Any) -> None:
    path = tmp_path / "c.db"
    clock = FakeClock()
    with sc.Cache(sc.SQLiteTier(path), codec="msgpack", clock=clock) as writer:
        writer.set("k", {"a": 1})
    with sc.Cache(sc.SQLiteTier(path), codec="json", clock=clock) as reader:
        assert reader.get("k", "miss") == "miss"
    with sc.Cache(sc.SQLiteTier(path), codec="msgpack", schema=1, clock=clock) as reader:
        assert reader.get("k", "miss") == "miss"
    with sc.Cache(sc.SQLiteTier(path), codec="msgpack", clock=clock) as reader:
        assert reader.get("k") == {"a": 1}
