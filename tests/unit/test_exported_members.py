"""The public surface is explicit: ``stratacache.__all__`` is frozen here and every name is real and documented."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import stratacache

EXPORTED = [
    "AccessLog",
    "AsyncCache",
    "Cache",
    "CacheClosedError",
    "Clock",
    "Codec",
    "CodecError",
    "ConfigError",
    "DecodeError",
    "EncodeError",
    "HotKey",
    "InvalidKeyError",
    "InvalidTTLError",
    "JsonCodec",
    "LoadPolicy",
    "LoadTimeout",
    "MemoryTier",
    "MsgpackCodec",
    "RedisTier",
    "SQLiteTier",
    "SerializationError",
    "SignatureError",
    "SignedPickleCodec",
    "Stats",
    "StrataCacheError",
    "TierError",
    "TierSpec",
    "TierStats",
    "TierTimeoutError",
    "TierUnavailableError",
    "ValueTooLargeError",
    "ZstdCodec",
    "__version__",
    "open",
]


def test_all_matches_the_frozen_list() -> None:
    """Adding or removing a public name is an API change: update this list (and the changelog) on purpose."""
    assert sorted(stratacache.__all__) == EXPORTED
    assert len(set(stratacache.__all__)) == len(stratacache.__all__), "duplicates in __all__"


def test_frozen_list_is_sorted() -> None:
    assert sorted(EXPORTED) == EXPORTED


@pytest.mark.parametrize("name", EXPORTED)
def test_every_name_is_importable(name: str) -> None:
    assert hasattr(stratacache, name)
    namespace: dict[str, object] = {}
    exec(f"from stratacache import {name}", namespace)
    assert namespace[name] is getattr(stratacache, name)


@pytest.mark.parametrize("name", [n for n in EXPORTED if not n.startswith("_")])
def test_every_class_and_function_has_a_docstring(name: str) -> None:
    obj = getattr(stratacache, name)
    assert inspect.isclass(obj) or inspect.isfunction(obj), f"{name} is neither a class nor a function"
    doc = obj.__doc__
    assert doc, f"stratacache.{name} has no docstring"
    assert doc.strip()


@pytest.mark.parametrize("name", [n for n in EXPORTED if inspect.isclass(getattr(stratacache, n))])
def test_public_methods_of_public_classes_are_documented(name: str) -> None:
    cls = getattr(stratacache, name)
    undocumented = [
        f"{klass.__qualname__}.{attr}"
        for klass in cls.__mro__
        if klass.__module__.startswith("stratacache")
        for attr, value in vars(klass).items()
        if not attr.startswith("_") and (inspect.isfunction(value) or isinstance(value, property)) and not value.__doc__
    ]
    assert undocumented == []


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from stratacache import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == EXPORTED


def test_exceptions_share_one_root() -> None:
    errors = [getattr(stratacache, n) for n in EXPORTED if n.endswith("Error")]
    assert len(errors) == 14
    for err in errors:
        assert issubclass(err, stratacache.StrataCacheError), err


def test_error_tree() -> None:
    sc = stratacache
    assert issubclass(sc.ConfigError, ValueError)
    assert issubclass(sc.InvalidKeyError, ValueError)
    assert issubclass(sc.InvalidTTLError, ValueError)
    assert issubclass(sc.ValueTooLargeError, ValueError)
    assert issubclass(sc.EncodeError, sc.CodecError)
    assert issubclass(sc.EncodeError, TypeError)
    assert issubclass(sc.DecodeError, sc.CodecError)
    assert issubclass(sc.SignatureError, sc.DecodeError)
    assert issubclass(sc.TierTimeoutError, sc.TierError)
    assert issubclass(sc.TierUnavailableError, sc.TierError)
    assert sc.SerializationError is sc.EncodeError


def test_version() -> None:
    assert isinstance(stratacache.__version__, str)
    assert stratacache.__version__.count(".") >= 2


def test_import_is_light() -> None:
    """``import stratacache`` pulls no optional extra (zstandard is imported by its codec only when used)."""
    code = (
        "import sys, stratacache; print(sorted(m for m in ('zstandard', 'typer', 'rich', 'redis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
