"""Canonical keys: injective encoding, validation, glob escaping, decorator arguments and stable digests."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import fnmatch
import itertools
import os
import subprocess
import sys
import uuid

import msgspec
import pytest

import stratacache as sc
from stratacache.core.keys import (
    MAX_KEY_LENGTH,
    build_key,
    canonical_arg,
    canonical_args,
    digest_args,
    encode_key,
    escape_glob,
    gen_name,
    validate_namespace,
    validate_tags,
)
from stratacache.errors import ConfigError, InvalidKeyError

# ------------------------------------------------------------------ user keys

SCALARS = [1, 1.0, True, "1", b"1", None, 0, 0.0, -0.0, False, "", b"", "True", "None", "T", "N"]


def test_tuple_parts_of_look_alike_scalars_encode_differently() -> None:
    encoded = [encode_key((v,)) for v in SCALARS]
    assert len(set(encoded)) == len(SCALARS), dict(zip(map(repr, SCALARS), encoded, strict=True))


def test_pairs_of_scalars_encode_injectively() -> None:
    keys = list(itertools.product(SCALARS, repeat=2))
    encoded = {encode_key(k) for k in keys}
    assert len(encoded) == len(keys)


def test_str_key_differs_from_one_element_tuple() -> None:
    assert encode_key("1") != encode_key(("1",))
    assert encode_key("1") != encode_key((1,))


@pytest.mark.parametrize(
    ("text", "as_tuple"),
    [
        ("(1)", (1,)),
        ("('1')", ("1",)),
        ("('a','b')", ("a", "b")),
        ("(T)", (True,)),
        ("(N)", (None,)),
        ("(b31)", (b"1",)),
    ],
)
def test_str_key_that_looks_like_a_tuple_does_not_collide(text: str, as_tuple: tuple[object, ...]) -> None:
    assert encode_key(text) != encode_key(as_tuple)
    assert encode_key(text).startswith("\\(")


def test_backslash_prefix_is_escaped_so_escaping_stays_injective() -> None:
    # "\(1)" escaped must not equal "(1)" escaped, nor the tuple (1,)
    keys = ["(1)", "\\(1)", "\\\\(1)", "\\", "\\\\"]
    encoded = [encode_key(k) for k in keys] + [encode_key((1,))]
    assert len(set(encoded)) == len(encoded)


def test_plain_str_keys_are_stored_verbatim() -> None:
    assert encode_key("user:42") == "user:42"
    assert build_key("ns", "user:42") == "ns:user:42"


def test_tuple_parts_with_separators_and_quotes() -> None:
    keys = [("a,b",), ("a", "b"), ("a'",), ("a\\",), ("a'", "b"), ("a',b",), ("a\\'", "b")]
    encoded = [encode_key(k) for k in keys]
    assert len(set(encoded)) == len(keys)


@pytest.mark.parametrize(
    "key",
    ["", (), 1, 1.0, b"x", None, True, ["a"], {"a": 1}, frozenset({"a"}), ("a", ["b"]), ("a", object())],
)
def test_unsupported_or_empty_keys_raise(key: object) -> None:
    with pytest.raises(InvalidKeyError):
        encode_key(key)


class _Str(str):
    __slots__ = ()


def test_subclasses_of_str_and_int_are_refused() -> None:
    # a subclass may redefine __str__/__eq__: the encoding only trusts exact types
    with pytest.raises(InvalidKeyError):
        encode_key(_Str("a"))
    with pytest.raises(InvalidKeyError):
        encode_key(("a", enum.IntEnum("E", "A").A))


def test_key_length_limit() -> None:
    assert encode_key("x" * MAX_KEY_LENGTH) == "x" * MAX_KEY_LENGTH
    with pytest.raises(InvalidKeyError):
        encode_key("x" * (MAX_KEY_LENGTH + 1))
    with pytest.raises(InvalidKeyError):
        encode_key(("x" * MAX_KEY_LENGTH,))


def test_invalid_key_error_is_a_value_error_and_a_stratacache_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        encode_key("")
    assert issubclass(InvalidKeyError, sc.StrataCacheError)


# ------------------------------------------------------------------ namespaces, tags, generations


@pytest.mark.parametrize("ns", ["", 1, None, "a\nb", "x" * 201])
def test_bad_namespaces(ns: object) -> None:
    with pytest.raises(ConfigError):
        validate_namespace(ns)


def test_good_namespace() -> None:
    assert validate_namespace("my-app.v2") == "my-app.v2"


def test_validate_tags_dedups_and_keeps_order() -> None:
    assert validate_tags(["b", "a", "b", "c"]) == ("b", "a", "c")
    assert validate_tags(()) == ()


@pytest.mark.parametrize("tags", ["user:1", [""], [1], ["x" * 257], [None]])
def test_bad_tags(tags: object) -> None:
    with pytest.raises(InvalidKeyError):
        validate_tags(tags)  # type: ignore[arg-type]


def test_gen_names_of_tags_and_namespaces_are_distinct() -> None:
    names = {gen_name("ns"), gen_name("ns", "t"), gen_name("ns", "u"), gen_name("ns2"), gen_name("ns2", "t")}
    assert len(names) == 5


# ------------------------------------------------------------------ glob escaping


@pytest.mark.parametrize("text", ["plain", "a*b", "a?b", "[abc]", "back\\slash", "*?[]\\", "ns:user:[1]*"])
def test_escape_glob_matches_only_itself(text: str) -> None:
    escaped = escape_glob(text)
    for ch in "*?[]":
        # every special character is preceded by a backslash
        assert escaped.count("\\" + ch) >= text.count(ch)
    # Redis GLOB semantics: a backslash escapes the next character; emulate with a tiny matcher
    assert _redis_glob_match(escaped, text)
    assert not _redis_glob_match(escaped, text + "x")
    if any(c in text for c in "*?["):
        assert not _redis_glob_match(escaped, text.replace("*", "Z").replace("?", "Z").replace("[", "Z"))


def _redis_glob_match(pattern: str, text: str) -> bool:
    """Translate a Redis-style glob (backslash escapes) to fnmatch and match (enough for these tests)."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append("[" + pattern[i + 1] + "]" if pattern[i + 1] != "\\" else "\\")
            i += 2
            continue
        out.append(ch)
        i += 1
    return fnmatch.fnmatchcase(text, "".join(out))


def test_escape_glob_leaves_ordinary_text_alone() -> None:
    assert escape_glob("user:42") == "user:42"
    assert escape_glob("") == ""


# ------------------------------------------------------------------ decorator arguments


class Color(enum.Enum):
    RED = 1
    ALSO_RED = 1  # noqa: PIE796 - an alias: the same member as RED
    BLUE = 2


class Shade(enum.Enum):
    RED = 1


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int


@dataclasses.dataclass(frozen=True)
class OtherPoint:
    x: int
    y: int


class Pair(msgspec.Struct):
    a: int
    b: str


def test_dict_encoding_is_order_independent() -> None:
    d1 = {"a": 1, "b": [1, 2], 3: "c"}
    d2 = {3: "c", "b": [1, 2], "a": 1}
    assert list(d1) != list(d2)
    assert canonical_arg(d1) == canonical_arg(d2)
    assert canonical_arg({"a": 1}) != canonical_arg({"a": 2})
    assert canonical_arg({"a": 1}) != canonical_arg({"b": 1})


def test_set_encoding_is_order_independent() -> None:
    # insertion orders differ, the encodings must not
    s1 = {f"item-{i}" for i in range(50)}
    s2 = {f"item-{i}" for i in reversed(range(50))}
    assert canonical_arg(s1) == canonical_arg(s2)
    assert canonical_arg(frozenset(s1)) == canonical_arg(s1)
    assert canonical_arg({1, 2}) != canonical_arg({1, 3})


def test_scalar_look_alikes_differ_as_arguments() -> None:
    values = [1, 1.0, True, "1", b"1", None, 0, False, 0.0, -0.0, "", b"", (), [], {}, set()]
    encoded = [canonical_arg(v) for v in values]
    assert len(set(encoded)) == len(values)


def test_containers_differ_by_type() -> None:
    assert canonical_arg((1, 2)) != canonical_arg([1, 2])
    assert canonical_arg([1, [2]]) != canonical_arg([[1], 2])
    assert canonical_arg(["ab"]) != canonical_arg(["a", "b"])


def test_argument_sequences_are_unambiguous() -> None:
    # concatenating encodings of different argument lists never coincides
    cases = [("ab", ""), ("a", "b"), ("", "ab"), ("a:b",), ("a", ":b"), (1, 2), (12,), ("1", "2"), ("12",)]
    encoded = [canonical_args(c) for c in cases]
    assert len(set(encoded)) == len(cases)


def test_enums() -> None:
    assert canonical_arg(Color.RED) == canonical_arg(Color.ALSO_RED)
    assert canonical_arg(Color.RED) != canonical_arg(Color.BLUE)
    assert canonical_arg(Color.RED) != canonical_arg(Shade.RED)
    assert canonical_arg(Color.RED) != canonical_arg(1)


def test_dataclasses_and_structs() -> None:
    assert canonical_arg(Point(1, 2)) == canonical_arg(Point(1, 2))
    assert canonical_arg(Point(1, 2)) != canonical_arg(Point(2, 1))
    assert canonical_arg(Point(1, 2)) != canonical_arg(OtherPoint(1, 2))
    assert canonical_arg(Pair(1, "x")) == canonical_arg(Pair(1, "x"))
    assert canonical_arg(Pair(1, "x")) != canonical_arg(Pair(1, "y"))


def test_dataclass_with_unsupported_field_raises() -> None:
    @dataclasses.dataclass
    class Holder:
        thing: object

    with pytest.raises(InvalidKeyError):
        canonical_arg(Holder(object()))


def test_datetimes_dates_times_and_others() -> None:
    moment = dt.datetime(2024, 5, 17, 12, 30, tzinfo=dt.UTC)
    values = [
        moment,
        moment.replace(tzinfo=None),
        moment.date(),
        moment.time(),
        dt.timedelta(seconds=5),
        dt.timedelta(seconds=6),
        uuid.UUID(int=1),
        uuid.UUID(int=2),
        decimal.Decimal("1.5"),
        decimal.Decimal("1.6"),
        "2024-05-17",
    ]
    encoded = [canonical_arg(v) for v in values]
    assert len(set(encoded)) == len(values)
    assert canonical_arg(dt.date(2024, 5, 17)) == canonical_arg(dt.date(2024, 5, 17))


class _Opaque:
    pass


@pytest.mark.parametrize(
    "value", [_Opaque(), object(), lambda: 1, 1 + 2j, bytearray(b"x"), [_Opaque()], {"k": _Opaque()}, {1: {_Opaque()}}]
)
def test_unsupported_argument_types_raise(value: object) -> None:
    with pytest.raises(InvalidKeyError):
        canonical_arg(value)
    with pytest.raises(InvalidKeyError):
        digest_args([1, value])


def test_digest_shape() -> None:
    d = digest_args([1, "a"])
    assert len(d) == 32
    int(d, 16)
    assert d == digest_args((1, "a"))
    assert d != digest_args(["a", 1])
    assert d != digest_args([1, "a", None])


# ------------------------------------------------------------------ stability across processes

_STABILITY_SCRIPT = """
import dataclasses, datetime as dt, enum, stratacache as sc
from stratacache.core.keys import digest_args, encode_key
from stratacache.testing import FakeClock

class Color(enum.Enum):
    RED = 1

@dataclasses.dataclass
class Point:
    x: int
    y: int

Color.__module__ = Point.__module__ = "stable.mod"
values = [
    1, 1.0, "s", b"b", None, True,
    {"z": 1, "a": [1, 2], "m": {"x", "y", "w", "q", "r", "s", "t"}},
    frozenset({"alpha", "beta", "gamma", "delta", "epsilon"}),
    Color.RED, Point(1, 2), dt.datetime(2024, 1, 2, 3, 4, 5), (1, "2"),
]
print(digest_args(values))
print(encode_key(("user", 1, 2.5, b"x", None, False)))

cache = sc.Cache(sc.MemoryTier(max_entries=10), clock=FakeClock())
def load_user(user_id, region="eu", *, fields=frozenset({"name", "email", "id"})):
    return None
load_user.__module__ = "stable.mod"
print(cache.cached(load_user).key(42))
"""


def _run_in_subprocess(hashseed: str) -> list[str]:
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    out = subprocess.run(
        [sys.executable, "-c", _STABILITY_SCRIPT], capture_output=True, text=True, env=env, check=True, timeout=60
    )
    return out.stdout.split()


def test_keys_and_digests_are_stable_across_processes_and_hash_seeds() -> None:
    results = [_run_in_subprocess(seed) for seed in ("0", "1", "12345")]
    first = results[0]
    assert len(first) == 3
    assert all(r == first for r in results), results
    # and they agree with this process (whatever its hash seed)
    in_process = {}
    exec(_STABILITY_SCRIPT.replace("print(", "_out.append("), {"_out": (lines := [])}, in_process)
    assert lines == first


def test_set_iteration_order_really_differs_between_seeds() -> None:
    # guards the test above: if string hashing were not randomized, it could pass without sorting
    script = "print(list({'x','y','w','q','r','s','t'}))"
    orders = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONHASHSEED=seed),
            check=True,
            timeout=60,
        ).stdout
        for seed in ("0", "1", "12345")
    }
    assert len(orders) > 1


def test_golden_encodings() -> None:
    # the stored form of keys is part of the on-disk format: a change invalidates every cache in the field
    assert encode_key(("user", 1)) == "('user',1)"
    assert encode_key(("a", True, None, b"\x01", 0.5)) == "('a',T,N,b01,f0x1.0000000000000p-1)"
    assert encode_key("(x") == "\\(x"
