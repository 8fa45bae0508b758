"""The ACL user that docs/redis.md recommends is enough for everything stratacache does (a real server)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import stratacache as sc

if TYPE_CHECKING:
    import pytest
    from tests.support.servers import RedisServer

_DOC = Path(__file__).resolve().parents[2] / "docs" / "redis.md"


def _documented_acl() -> list[str]:
    line = next(s for s in _DOC.read_text().splitlines() if s.startswith("ACL SETUSER stratacache"))
    return line.split()[2:]  # after "ACL SETUSER": the user name and its rules


def test_the_documented_acl_user_can_do_everything(private_redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = [r if r != ">CHANGE-ME" else ">s3cret-for-the-test" for r in _documented_acl()]
    admin = private_redis.client()
    admin.execute_command("ACL", "SETUSER", *rules, "+scan")  # + delete_matching, as the doc says
    monkeypatch.setenv("STRATACACHE_REDIS_USERNAME", "stratacache")
    monkeypatch.setenv("STRATACACHE_REDIS_PASSWORD", "s3cret-for-the-test")
    spec = sc.RedisTier(private_redis.url, prefix="sc:", timeout=2.0)
    policy = sc.LoadPolicy(lease_wait=2.0)
    with (
        sc.Cache(sc.MemoryTier(), spec, namespace="acl", policy=policy) as a,
        sc.Cache(sc.MemoryTier(), spec, namespace="acl") as b,
    ):
        a.set("k", 1, tags=["t"])
        assert a.get_or_load("loaded", lambda: 2) == 2  # lease, fence, fill script
        assert b.get("k") == 1
        a.invalidate_tags("t")  # bump script
        assert a.get("k") is None
        deadline = time.monotonic() + 5
        while b.get("k") is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b.get("k") is None  # the backplane reached the other L1
        assert a.delete("loaded")
        a.set("x:1", 1)
        assert a.delete_matching("x:*") == 1
        a.clear()
        stats = a.stats()["redis"]
        assert stats.errors == 0
        assert stats.backplane == "up"
        assert stats.entries > 0  # dbsize/info allowed
