"""delete_matching: the explicit admin pattern delete (escaped glob, paged walk), memory and SQLite tiers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from stratacache import Cache, ConfigError, MemoryTier, SQLiteTier
from stratacache.core.keys import glob_regex

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("user:*", "user:1", True),
        ("user:*", "users:1", False),
        ("user:?", "user:12", False),
        ("u[ab]", "ub", True),
        ("u[^ab]", "ua", False),
        ("u[!ab]", "uc", True),
        ("[a-c]x", "bx", True),
        (r"a\*b", "a*b", True),
        (r"a\*b", "axb", False),
        ("a.b", "axb", False),  # regex characters are literal
        ("[", "[", True),
    ],
)
def test_glob_language(pattern: str, text: str, matches: bool) -> None:
    assert bool(glob_regex(pattern).fullmatch(text)) is matches


@pytest.fixture(params=["memory", "sqlite", "memory+sqlite"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Cache:
    tiers: dict[str, tuple[object, ...]] = {
        "memory": (MemoryTier(),),
        "sqlite": (SQLiteTier(tmp_path / "c.db"),),
        "memory+sqlite": (MemoryTier(), SQLiteTier(tmp_path / "c.db")),
    }
    return Cache(*tiers[request.param], namespace="app")  # type: ignore[arg-type]


def test_deletes_only_matching_keys_of_its_namespace(cache: Cache, tmp_path: Path) -> None:
    with cache:
        for i in range(120):
            cache.set(f"user:{i}", i)
            cache.set(f"order:{i}", i)
        cache.set("user*literal", "x")
        assert cache.delete_matching("user:1*", page=7) == 31  # 1, 10-19, 100-119
        assert cache.get("user:1") is None
        assert cache.get("user:119") is None
        assert cache.get("user:2") == 2
        assert cache.get("order:1") == 1
        assert cache.delete_matching(r"user\*literal") == 1
        assert cache.delete_matching("nothing:*") == 0


def test_other_namespaces_are_untouched(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with Cache(SQLiteTier(db), namespace="a") as a, Cache(SQLiteTier(db), namespace="a:b") as ab:
        a.set("k", 1)
        ab.set("k", 2)
        assert a.delete_matching("*") == 1
        assert ab.get("k") == 2


@pytest.mark.parametrize(("pattern", "page"), [("", 10), (5, 10), ("*", 0), ("*", 10_001), ("*", True)])
def test_bad_arguments(pattern: object, page: object) -> None:
    with Cache() as cache, pytest.raises(ConfigError):
        cache.delete_matching(pattern, page=page)  # type: ignore[arg-type]
