"""Hierarchical namespaces: invalidating ``tenant:42`` invalidates ``tenant:42/users`` and below, nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from stratacache import Cache, ConfigError, MemoryTier, SQLiteTier
from stratacache.invalidation.generations import Generations
from stratacache.testing import FakeClock

if TYPE_CHECKING:
    from pathlib import Path


def _cache(path: Path, namespace: str, clock: FakeClock) -> Cache:
    return Cache(MemoryTier(), SQLiteTier(path), namespace=namespace, clock=clock)


def test_clearing_a_parent_invalidates_its_children_only(tmp_path: Path) -> None:
    clock = FakeClock()
    db = tmp_path / "c.db"
    tenant = _cache(db, "tenant:42", clock)
    users = _cache(db, "tenant:42/users", clock)
    orders = _cache(db, "tenant:42/orders", clock)
    other = _cache(db, "tenant:7/users", clock)
    sibling_prefix = _cache(db, "tenant:420", clock)  # a prefix of the string, not a parent
    with tenant, users, orders, other, sibling_prefix:
        for c in (tenant, users, orders, other, sibling_prefix):
            c.set("k", c.namespace)
            assert c.get("k") == c.namespace
        users.clear()
        assert users.get("k") is None
        assert tenant.get("k") == "tenant:42"
        assert orders.get("k") == "tenant:42/orders"
        orders.set("k", "again")
        users.set("k", "again")
        tenant.clear()
        assert tenant.get("k") is None
        assert users.get("k") is None  # below tenant:42
        assert orders.get("k") is None
        assert other.get("k") == "tenant:7/users"
        assert sibling_prefix.get("k") == "tenant:420"


def test_invalidate_namespace_from_anywhere(tmp_path: Path) -> None:
    clock = FakeClock()
    db = tmp_path / "c.db"
    admin = _cache(db, "admin", clock)
    deep = _cache(db, "tenant:42/users/avatars", clock)
    with admin, deep:
        deep.set("k", 1)
        assert deep.get("k") == 1  # now in deep's L1 too
        admin.invalidate_namespace("tenant:42/users")
        assert deep.get("k") is None  # the backplane told deep's L1
        deep.set("k", 2)
        admin.invalidate_namespace("tenant:42/orders")
        assert deep.get("k") == 2


def test_tags_stay_scoped_to_their_namespace(tmp_path: Path) -> None:
    clock = FakeClock()
    db = tmp_path / "c.db"
    a = _cache(db, "t/a", clock)
    b = _cache(db, "t/b", clock)
    with a, b:
        a.set("k", 1, tags=["user:1"])
        b.set("k", 2, tags=["user:1"])
        a.invalidate_tags("user:1")
        assert a.get("k") is None
        assert b.get("k") == 2


def test_memory_only_cache_invalidates_its_own_chain() -> None:
    with Cache(namespace="tenant:1/users") as cache:
        cache.set("k", 1)
        cache.invalidate_namespace("tenant:1")
        assert cache.get("k") is None
        cache.set("k", 2)
        cache.invalidate_namespace("tenant:2")  # not ours: nothing happens here
        assert cache.get("k") == 2


@pytest.mark.parametrize("namespace", ["a//b", "/a", "a/", "/"])
def test_empty_levels_are_refused(namespace: str) -> None:
    with pytest.raises(ConfigError):
        Cache(namespace=namespace)
    with Cache() as cache, pytest.raises(ConfigError):
        cache.invalidate_namespace(namespace)


def test_generation_of_a_chain_is_the_sum_of_its_counters() -> None:
    g = Generations("a/b/c", authoritative=False)
    assert len(g.chain_names) == 3
    g.learn_chain([5, 7, 11])
    assert g.snapshot(()) == (23,)
    assert g.learn_names({g.chain_names[0]: 6})  # an ancestor moved
    assert g.snapshot(()) == (24,)
    assert not g.learn_names({g.chain_names[0]: 3})  # counters only move forward
    g.forget()
    assert g.snapshot(()) is None
    g.restore()
    assert g.snapshot(()) == (24,)
