"""Observation hooks: the sampled access log, per-tenant counts and the tracer (bounded, never on the L1 hit path)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest

import stratacache as sc
from stratacache.metrics.accesslog import AccessLog, read_hot_keys
from stratacache.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def test_rate_one_records_every_lookup_and_ranks_by_count() -> None:
    log = AccessLog(rate=1.0, window=100)
    for key, n in (("a", 5), ("b", 3), ("c", 1)):
        for i in range(n):
            log.record(key, i > 0)
    top = log.hot_keys(2)
    assert [(h.key, h.count, h.hits) for h in top] == [("a", 5, 4), ("b", 3, 2)]
    assert top[0].share == pytest.approx(5 / 9)
    assert top[0].hit_ratio == pytest.approx(4 / 5)
    assert log.sampled == 9


def test_window_bounds_memory_and_forgets_old_keys() -> None:
    log = AccessLog(rate=1.0, window=10)
    for i in range(1000):
        log.record(f"old{i % 7}", True)
    for _ in range(10):
        log.record("new", False)
    assert [(h.key, h.count, h.hits) for h in log.hot_keys(5)] == [("new", 10, 0)]
    assert len(log._counts) == 1
    assert len(log._hits) == 0


def test_request_sampling_keeps_about_rate_of_lookups() -> None:
    log = AccessLog(rate=0.1, window=100_000, seed=7)
    for i in range(20_000):
        log.record(f"k{i % 50}", True)
    assert 1_700 <= log.sampled <= 2_300


def test_key_sampling_keeps_all_lookups_of_a_fixed_subset_of_keys() -> None:
    log = AccessLog(rate=0.25, window=100_000, by="key")
    for _ in range(3):
        for i in range(400):
            log.record(f"k{i}", True)
    counts = {h.key: h.count for h in log.hot_keys(400)}
    assert set(counts.values()) == {3}  # a sampled key is sampled on every lookup
    assert 60 <= len(counts) <= 140


def test_trace_file_is_one_key_per_line_escaped_and_rotated(tmp_path: Path) -> None:
    path = tmp_path / "keys-{pid}.log"
    log = AccessLog(rate=1.0, path=path, max_file_bytes=1024)
    assert log.path is not None
    assert "{pid}" not in log.path.name
    log.record("plain", True)
    log.record("two\nlines\\x", False)
    log.flush()
    assert log.path.read_text() == "plain\ntwo\\nlines\\\\x\n"
    top, total = read_hot_keys([log.path])
    assert total == 2
    assert {h.key for h in top} == {"plain", "two\nlines\\x"}
    for i in range(200):
        log.record(f"key-{i:04d}", True)
        log.flush()
    rotated = log.path.with_name(log.path.name + ".1")
    assert rotated.exists()
    assert log.path.stat().st_size <= 1024
    assert rotated.stat().st_size <= 1024


def test_read_hot_keys_merges_files_and_keeps_the_last_lines(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("x\nx\ny\n")
    b.write_text("y\ny\ny\nz\n")
    top, total = read_hot_keys([a, b], 2)
    assert total == 7
    assert [(h.key, h.count) for h in top] == [("y", 4), ("x", 2)]
    top, total = read_hot_keys([a, b], 5, last=1)
    assert total == 2
    assert {h.key for h in top} == {"y", "z"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate": 0}, "rate"),
        ({"rate": 1.5}, "rate"),
        ({"rate": True}, "rate"),
        ({"window": 0}, "window"),
        ({"max_file_bytes": 10}, "max_file_bytes"),
        ({"by": "tenant"}, "by"),
    ],
)
def test_bad_options_are_config_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(sc.ConfigError, match=match):
        AccessLog(**kwargs)


def test_an_unwritable_trace_file_never_fails_a_lookup(tmp_path: Path) -> None:
    log = AccessLog(rate=1.0, path=tmp_path / "missing-dir" / "keys.log")
    log.record("k", True)
    log.flush()  # the directory does not exist: samples are dropped, nothing raised
    assert [h.key for h in log.hot_keys()] == ["k"]


@contextlib.contextmanager
def _cache(**kwargs: Any) -> Iterator[sc.Cache]:
    cache = sc.Cache(sc.MemoryTier(max_entries=100), namespace="svc", clock=FakeClock(), **kwargs)
    try:
        yield cache
    finally:
        cache.close()


def test_cache_records_get_get_many_and_get_or_load_without_its_namespace(tmp_path: Path) -> None:
    log = AccessLog(rate=1.0, path=tmp_path / "trace.log")
    with _cache(access_log=log) as cache:
        cache.set("a", 1)
        assert cache.get("a") == 1
        assert cache.get("b") is None
        assert cache.get_many(["a", "b", "c"]) == {"a": 1}
        assert cache.get_or_load("c", lambda: 3) == 3
        assert cache.get_or_load("c", lambda: 4) == 3
        hot = {h.key: (h.count, h.hits) for h in cache.hot_keys()}
        assert hot == {"a": (2, 2), "b": (2, 0), "c": (3, 1)}
    assert (tmp_path / "trace.log").read_text().split() == ["a", "b", "a", "b", "c", "c", "c"]


def test_hot_keys_without_an_access_log_is_a_config_error() -> None:
    with _cache() as cache, pytest.raises(sc.ConfigError, match="access log"):
        cache.hot_keys()


def test_access_log_must_be_an_access_log() -> None:
    with pytest.raises(sc.ConfigError, match="AccessLog"):
        sc.Cache(access_log=0.01)  # type: ignore[arg-type]


def test_tenants_are_counted_per_tenant_and_bounded() -> None:
    with _cache(tenant_of=lambda key: key.split(":", 1)[0], max_tenants=2) as cache:
        cache.set("t1:a", 1)
        cache.get("t1:a")
        cache.get("t1:b")
        cache.get("t2:a")
        for i in range(3, 10):
            cache.get(f"t{i}:a")
        assert cache.stats().tenants == (("other", 0, 7), ("t1", 1, 1), ("t2", 0, 1))


def test_a_failing_tenant_function_counts_unknown_and_never_fails_the_lookup() -> None:
    def tenant_of(key: str) -> str:
        if key == "boom":
            raise RuntimeError(key)
        return 42 if key == "int" else "t"  # type: ignore[return-value]

    with _cache(tenant_of=tenant_of) as cache:
        assert cache.get("boom") is None
        assert cache.get("int") is None
        assert cache.get("x") is None
        assert {t: (h, m) for t, h, m in cache.stats().tenants} == {"unknown": (0, 2), "t": (0, 1)}


@pytest.mark.parametrize(("tenant_of", "max_tenants"), [("nope", 10), (str, 0), (str, True)])
def test_bad_tenant_options_are_config_errors(tenant_of: Any, max_tenants: Any) -> None:
    with pytest.raises(sc.ConfigError):
        sc.Cache(tenant_of=tenant_of, max_tenants=max_tenants)


def test_tracer_wraps_loads_and_lower_tier_calls_never_l1_hits(tmp_path: Path) -> None:
    spans: list[tuple[str, dict[str, Any]]] = []

    @contextlib.contextmanager
    def tracer(name: str, attributes: dict[str, Any]) -> Iterator[None]:
        spans.append((name, attributes))
        yield

    cache = sc.Cache(sc.MemoryTier(), sc.SQLiteTier(tmp_path / "c.db"), namespace="t", clock=FakeClock())
    try:
        cache.set_tracer(tracer)
        assert cache.get_or_load("k", lambda: 1) == 1
        names = [n for n, _ in spans]
        assert names[0] == "stratacache.tier.get"
        assert "stratacache.load" in names
        assert "stratacache.tier.fill" in names
        assert all(a.get("stratacache.tier", "sqlite") == "sqlite" for _, a in spans)
        spans.clear()
        assert cache.get("k") == 1  # an L1 hit: not traced
        assert spans == []
        cache.set("j", 2)
        assert [n for n, _ in spans] == ["stratacache.tier.set"]
        cache.set_tracer(None)
        spans.clear()
        cache.set("j", 3)
        assert spans == []
        with pytest.raises(sc.ConfigError):
            cache.set_tracer("not callable")  # type: ignore[arg-type]
    finally:
        cache.close()
