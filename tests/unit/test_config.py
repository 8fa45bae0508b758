"""Configuration parsing: sizes, TTLs, tier URLs, tier specs and their URL forms."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import stratacache as sc
from stratacache.core.config import parse_bool, parse_int, parse_size, parse_tier_url, validate_ttl
from stratacache.errors import ConfigError, InvalidTTLError
from stratacache.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator

# ------------------------------------------------------------------ sizes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (4096, 4096),
        ("4096", 4096),
        ("1B", 1),
        ("1k", 1000),
        ("1KB", 1000),
        ("1KiB", 1024),
        ("64kib", 64 * 1024),
        (" 64 MiB ", 64 * 1024**2),
        ("256MiB", 256 * 1024**2),
        ("1MB", 1000**2),
        ("1.5GB", 1_500_000_000),
        ("1GiB", 1024**3),
        ("2TiB", 2 * 1024**4),
        ("0.5KiB", 512),
    ],
)
def test_parse_size_units(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "bad", [0, -1, "0", "-1", "0.1", "", "abc", "10XB", "1e3", "MiB", "1 2 MiB", True, False, 1.5, None, [1]]
)
def test_parse_size_errors(bad: object) -> None:
    with pytest.raises(ConfigError):
        parse_size(bad)


def test_parse_size_error_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="max_bytes"):
        parse_size("lots", what="max_bytes")


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size("nope")


@pytest.mark.parametrize(("value", "expected"), [(5, 5), ("5", 5), ("1_000", 1000)])
def test_parse_int(value: object, expected: int) -> None:
    assert parse_int(value, what="n") == expected


@pytest.mark.parametrize("bad", [0, -3, "0", "x", "1.5", 1.5, True, None])
def test_parse_int_errors(bad: object) -> None:
    with pytest.raises(ConfigError):
        parse_int(bad, what="n")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("1", True), ("yes", True), (" On ", True), ("0", False), ("false", False)],
)
def test_parse_bool(value: object, expected: bool) -> None:
    assert parse_bool(value, what="b") is expected


@pytest.mark.parametrize("bad", ["maybe", "", 1, None])
def test_parse_bool_errors(bad: object) -> None:
    with pytest.raises(ConfigError):
        parse_bool(bad, what="b")


# ------------------------------------------------------------------ TTLs


@pytest.mark.parametrize(("ttl", "expected"), [(1, 1.0), (0.5, 0.5), (300, 300.0), (1e-3, 1e-3), (None, None)])
def test_validate_ttl_accepts(ttl: object, expected: float | None) -> None:
    result = validate_ttl(ttl)
    assert result == expected
    assert result is None or type(result) is float


@pytest.mark.parametrize("bad", [-1, -0.5, 0, 0.0, -0.0, math.nan, math.inf, -math.inf, True, False, "10", b"1", [1]])
def test_validate_ttl_rejects(bad: object) -> None:
    with pytest.raises(InvalidTTLError):
        validate_ttl(bad)


def test_ttl_none_can_be_required() -> None:
    with pytest.raises(InvalidTTLError):
        validate_ttl(None, allow_none=False)


def test_invalid_ttl_error_hierarchy() -> None:
    assert issubclass(InvalidTTLError, ValueError)
    assert issubclass(InvalidTTLError, sc.StrataCacheError)


@pytest.mark.parametrize("bad", [-1, 0, math.nan, math.inf, True, "60"])
def test_bad_ttl_is_refused_at_the_call_site(bad: object) -> None:
    with sc.Cache(sc.MemoryTier(max_entries=10), clock=FakeClock()) as cache:
        cache.set("k", "old")
        with pytest.raises(InvalidTTLError):
            cache.set("k", "new", ttl=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidTTLError):
            cache.get_or_load("k2", lambda: 1, ttl=bad)  # type: ignore[arg-type]
        assert cache.get("k") == "old"
        assert cache.get("k2", "absent") == "absent"
    with pytest.raises(InvalidTTLError):
        sc.Cache(sc.MemoryTier(max_entries=10), ttl=bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------ tier URLs


def test_parse_memory_url() -> None:
    u = parse_tier_url("memory://?max_entries=10&max_bytes=1MiB&policy=lru")
    assert u.scheme == "memory"
    assert u.path == ""
    assert u.params == {"max_entries": "10", "max_bytes": "1MiB", "policy": "lru"}


def test_parse_sqlite_url() -> None:
    u = parse_tier_url("sqlite:///var/cache/app%20x.db?max_bytes=1GiB")
    assert (u.scheme, u.path, u.params, u.netloc) == ("sqlite", "/var/cache/app x.db", {"max_bytes": "1GiB"}, "")
    assert parse_tier_url("sqlite://localhost/a.db").netloc == "localhost"


def test_scheme_is_case_insensitive_and_blank_values_kept() -> None:
    u = parse_tier_url("MEMORY://?policy=")
    assert u.scheme == "memory"
    assert u.params == {"policy": ""}


@pytest.mark.parametrize("bad", ["", "   ", "memory", "/tmp/x.db", "memory:?x=1", 42, None])
def test_parse_tier_url_errors(bad: object) -> None:
    with pytest.raises(ConfigError):
        parse_tier_url(bad)


def test_repeated_parameter_is_refused() -> None:
    with pytest.raises(ConfigError, match="twice"):
        parse_tier_url("memory://?max_entries=1&max_entries=2")


# ------------------------------------------------------------------ MemoryTier


def test_memory_tier_normalises_sizes() -> None:
    t = sc.MemoryTier(max_entries="10", max_bytes="1MiB")  # type: ignore[arg-type]
    assert t.max_entries == 10
    assert t.max_bytes == 1024**2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_entries": 0},
        {"max_entries": -1},
        {"max_entries": True},
        {"max_entries": 1.5},
        {"max_entries": "ten"},
        {"max_bytes": 0},
        {"max_bytes": "lots"},
        {"max_entries": None, "max_bytes": None},
        {"policy": "fifo"},
        {"policy": "LRU"},
        {"weigher": 5},
        {"ttl_cap": 0},
        {"ttl_cap": -1},
        {"ttl_cap": math.inf},
        {"ttl_cap": True},
    ],
)
def test_memory_tier_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        sc.MemoryTier(**kwargs)  # type: ignore[arg-type]


def test_memory_tier_from_url() -> None:
    t = sc.MemoryTier.from_url(parse_tier_url("memory://?max_entries=10&max_bytes=1MiB&policy=lru"))
    assert t == sc.MemoryTier(max_entries=10, max_bytes=1024**2, policy="lru")
    t2 = sc.MemoryTier.from_url(parse_tier_url("memory://?max_entries=none&max_bytes=64KiB&copy_on_read=true"))
    assert (t2.max_entries, t2.max_bytes, t2.copy_on_read) == (None, 64 * 1024, True)
    assert sc.MemoryTier.from_url(parse_tier_url("memory://?ttl_cap=2.5")).ttl_cap == 2.5


@pytest.mark.parametrize(
    "url",
    [
        "memory://?max_entries=0",
        "memory://?max_entries=abc",
        "memory://?max_entries=",
        "memory://?max_bytes=lots",
        "memory://?policy=fifo",
        "memory://?copy_on_read=maybe",
        "memory://?ttl_cap=soon",
        "memory://?ttl_cap=0",
        "memory://?max_entries=none&max_bytes=none",
        "memory://?unknown=1",
        "memory://?max_entries=10&Max_Bytes=1MiB",
    ],
)
def test_memory_url_errors_via_open(url: str) -> None:
    with pytest.raises(ConfigError):
        sc.open(url)


def test_open_builds_a_working_memory_cache() -> None:
    with sc.open("memory://?max_entries=10&max_bytes=1MiB&policy=lru", clock=FakeClock()) as cache:
        cache.set("k", 1)
        assert cache.get("k") == 1
        assert [t.name for t in cache.stats().tiers] == ["memory"]


def test_tinylfu_is_the_default_policy_and_lru_a_choice() -> None:
    assert sc.MemoryTier().policy == "tinylfu"
    for policy in ("tinylfu", "lru"):  # filterwarnings=error: neither warns
        with sc.open(f"memory://?max_entries=10&policy={policy}") as cache:
            cache.set("k", 1)
            assert cache.get("k") == 1


# ------------------------------------------------------------------ SQLiteTier


def test_sqlite_tier_spec(tmp_path: Path) -> None:
    t = sc.SQLiteTier(str(tmp_path / "c.db"), max_bytes="1MiB", busy_timeout=2)
    assert t.path == tmp_path / "c.db"
    assert isinstance(t.path, Path)
    assert t.max_bytes == 1024**2


def test_sqlite_tier_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sc.SQLiteTier("~/c.db").path == tmp_path / "c.db"


def test_sqlite_default_path_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STRATACACHE_SQLITE_PATH", str(tmp_path / "env.db"))
    assert sc.SQLiteTier().path == tmp_path / "env.db"
    assert sc.SQLiteTier.from_url(parse_tier_url("sqlite://")).path == tmp_path / "env.db"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_bytes": 0},
        {"max_bytes": "huge"},
        {"busy_timeout": -1},
        {"busy_timeout": 601},
        {"busy_timeout": True},
        {"busy_timeout": "5"},
    ],
)
def test_sqlite_tier_validation(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        sc.SQLiteTier(tmp_path / "c.db", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["", 5])
def test_sqlite_tier_bad_path(path: object) -> None:
    with pytest.raises(ConfigError):
        sc.SQLiteTier(path)  # type: ignore[arg-type]


def test_sqlite_tier_directory_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory"):
        sc.SQLiteTier(tmp_path)


def test_sqlite_tier_from_url(tmp_path: Path) -> None:
    t = sc.SQLiteTier.from_url(parse_tier_url(f"sqlite://{tmp_path}/c.db?max_bytes=1MiB&busy_timeout=1.5"))
    assert t == sc.SQLiteTier(tmp_path / "c.db", max_bytes=1024**2, busy_timeout=1.5)
    assert sc.SQLiteTier.from_url(parse_tier_url(f"sqlite://{tmp_path}/c.db?max_bytes=none")).max_bytes is None
    assert sc.SQLiteTier.from_url(parse_tier_url(f"sqlite://localhost{tmp_path}/c.db")).path == tmp_path / "c.db"


@pytest.fixture
def no_files(tmp_path: Path) -> Iterator[Path]:
    before = set(tmp_path.iterdir())
    yield tmp_path
    assert set(tmp_path.iterdir()) == before, "a refused configuration created files"


@pytest.mark.parametrize(
    "query",
    ["?max_bytes=0", "?max_bytes=big", "?busy_timeout=soon", "?busy_timeout=-1", "?foo=1", "?policy=lru"],
)
def test_sqlite_url_errors_via_open(no_files: Path, query: str) -> None:
    with pytest.raises(ConfigError):
        sc.open(f"sqlite://{no_files}/c.db{query}")


def test_sqlite_url_with_a_host_is_refused(no_files: Path) -> None:
    with pytest.raises(ConfigError, match="three slashes"):
        sc.open("sqlite://relative/c.db")


def test_open_with_both_tiers(tmp_path: Path) -> None:
    clock = FakeClock()
    with sc.open(f"memory://?max_entries=10,sqlite://{tmp_path}/c.db?max_bytes=1MiB", clock=clock) as cache:
        assert [t.name for t in cache.stats().tiers] == ["memory", "sqlite"]
        cache.set("k", "v")
        assert cache.get("k") == "v"


@pytest.mark.parametrize(
    "urls",
    [
        ("redis://localhost:99999/0",),
        ("redis://localhost:6379/16",),
        ("redis+sentinel://127.0.0.1:26379",),
        ("redis://a:1,b:2/0",),
        ("redis://localhost:6379/0?timeout=-1",),
        ("redis://localhost:6379/0?colour=blue",),
        ("ftp://x",),
        ("memory",),
        ("",),
        (",",),
        ("memory://", "memory://"),
        ("memory://?max_entries=10", 5),
    ],
)
def test_open_errors(no_files: Path, urls: tuple[object, ...]) -> None:
    with pytest.raises(ConfigError):
        sc.open(*urls)  # type: ignore[arg-type]


def test_memory_tier_must_come_first(no_files: Path) -> None:
    with pytest.raises(ConfigError, match="first"):
        sc.Cache(sc.SQLiteTier(no_files / "c.db"), sc.MemoryTier(max_entries=10))
    assert not (no_files / "c.db").exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"namespace": ""},
        {"namespace": 1},
        {"codec": "yaml"},
        {"codec": "msgpack+gzip"},
        {"codec": 3},
        {"schema": -1},
        {"schema": True},
        {"schema": 2**23},
        {"ttl_jitter": 1.0},
        {"ttl_jitter": -0.1},
        {"ttl_jitter": True},
    ],
)
def test_cache_argument_errors(no_files: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        sc.Cache(sc.SQLiteTier(no_files / "c.db"), **kwargs)  # type: ignore[arg-type]


def test_cache_refuses_objects_that_are_not_tiers() -> None:
    with pytest.raises(ConfigError):
        sc.Cache(object())  # type: ignore[arg-type]


def test_open_keeps_multi_host_urls_whole(no_files: Path) -> None:
    from stratacache._api import _URL_SPLIT

    parts = [p for p in _URL_SPLIT.split("memory://?max_entries=10,redis+cluster://h1:7000,h2:7001,h3:7002/0") if p]
    assert parts == ["memory://?max_entries=10", "redis+cluster://h1:7000,h2:7001,h3:7002/0"]
    parts = [p for p in _URL_SPLIT.split("memory://, redis+sentinel://s1:26379,s2:26379/mymaster/0,") if p]
    assert parts == ["memory://", "redis+sentinel://s1:26379,s2:26379/mymaster/0"]
