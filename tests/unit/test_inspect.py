"""Cache.inspect: every tier's view of one key, without counting, loading or changing anything."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import stratacache as sc
from stratacache.testing import FakeClock

if TYPE_CHECKING:
    from pathlib import Path


def test_inspect_reports_each_tier_and_the_generations(tmp_path: Path) -> None:
    clock = FakeClock()
    with sc.Cache(sc.MemoryTier(), sc.SQLiteTier(tmp_path / "c.db"), namespace="i", clock=clock, schema=3) as c:
        c.set("k", {"a": 1}, ttl=60, tags=["user:1"])
        clock.advance(10)
        before = c.stats()
        first, second = c.inspect("k")
        assert c.stats() == before  # nothing counted
        for info in (first, second):
            assert info.present
            assert info.error is None
            assert info.age == pytest.approx(10)
            assert info.ttl_left == pytest.approx(50)
            assert info.codec == "msgpack"
            assert info.schema == 3
            assert info.tags == ("user:1",)
            assert info.current is True
            assert [(name, w == n) for name, w, n in info.generations] == [("<namespace>", True), ("user:1", True)]
        assert (first.tier, second.tier) == ("memory", "sqlite")
        assert second.size is not None
        assert second.size > 0
        c.invalidate_tags("user:1")
        info = c.inspect("k")[1]
        assert info.present
        assert info.current is False  # still stored, but superseded by the tag's new generation
        assert info.generations[1][1] != info.generations[1][2]
        clock.advance(100)
        d = c.inspect("k")[1].to_dict()
        assert d["ttl_left"] == pytest.approx(-50)
        assert d["current"] is False
        assert [i.present for i in c.inspect("absent")] == [False, False]


def test_inspect_of_a_compressed_entry_names_the_codec(tmp_path: Path) -> None:
    pytest.importorskip("zstandard")
    with sc.Cache(sc.SQLiteTier(tmp_path / "c.db"), codec="json+zstd", namespace="z") as c:
        c.set("k", "x" * 5000)
        (info,) = c.inspect("k")
        assert info.codec == "json+zstd"


def test_inspect_rejects_a_bad_key() -> None:
    with sc.Cache() as c, pytest.raises(sc.InvalidKeyError):
        c.inspect("")
