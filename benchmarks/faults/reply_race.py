"""Scenario 6: the invalidation arrives before the reply: the data connection is delayed 200 ms, the backplane not.

The reader is ``Cache(MemoryTier(), RedisTier(proxy.url(), backplane_url=server.url, timeout=1.0))``: its data
path goes through a ``FaultProxy`` delaying every reply 200 ms, its backplane subscribes to the server directly.
The writer is ``Cache(RedisTier(server.url))``. One trial, on a fresh key holding ``v1``:

1. the reader's ``get(key)`` starts; its GET reaches Redis at once, the ``v1`` reply is held 200 ms by the proxy;
2. once the GETs have gone out (the proxy's upstream byte count moved, plus 20 ms), the writer sets ``v2``: the
   write and its backplane message are committed while the old reply is in flight;
3. the reply arrives: the reader may return ``v1`` (the read overlapped the write), but must not keep it in L1.

A trial *raced* when the reader returned ``v1``; it left a *stale L1 entry* when its L1 holds the key afterwards
(``v2`` was never read, so whatever L1 holds is ``v1``). Trials run in batches of 50 concurrent reader threads
(the pool is warmed with 50 connections first, so no handshake is delayed).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from benchmarks.faults.common import Result, pause, prefix, redis_server, wait_until
from stratacache import Cache, MemoryTier, RedisTier
from stratacache.testing import FaultProxy

DELAY = 0.2
BATCH = 50


def _concurrently(n: int, target: Any) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def run(*, quick: bool) -> list[Result]:
    trials = 200 if quick else 1000
    result = Result("6", f"Invalidation before reply (data replies delayed {DELAY * 1000:.0f} ms)")
    result.params.update({"trials": trials, "batch": BATCH, "reply_delay": DELAY, "reader_timeout": 1.0})
    if "backplane_url" not in RedisTier.__dataclass_fields__:
        result.measurable = False
        result.notes.append("not measurable: needs a backplane_url option")
        return [result]
    pfx = prefix()
    raced = stale = not_raced = errors = 0
    with redis_server() as server, FaultProxy(server.host, server.port) as proxy:
        tier = RedisTier(
            proxy.url(), prefix=pfx, backplane_url=server.url, timeout=1.0, connect_timeout=1.0, heartbeat=0.2
        )
        reader = Cache(MemoryTier(), tier, namespace="race")
        writer = Cache(RedisTier(server.url, prefix=pfx, heartbeat=0.2), namespace="race")
        l1: Any = reader._l1
        with reader, writer:
            proxy.delay(0.05)  # warm-up: BATCH reads at once open BATCH pooled connections
            for t in _concurrently(BATCH, lambda i: reader.get(f"warm-{i}")):
                t.join(5.0)
            batch = 0
            while batch * BATCH < trials:
                keys = [f"race:{batch}:{i}" for i in range(BATCH)]
                writer.set_many(dict.fromkeys(keys, 1))
                proxy.delay(DELAY)
                got: list[Any] = [None] * BATCH
                sent = proxy.stats.bytes_up

                def read(i: int, keys: list[str] = keys, got: list[Any] = got) -> None:
                    try:
                        got[i] = reader.get(keys[i])
                    except Exception as exc:
                        got[i] = exc

                threads = _concurrently(BATCH, read)
                wait_until(lambda sent=sent: proxy.stats.bytes_up > sent, 2.0)
                pause(0.02)  # every GET has reached Redis; the replies are held by the proxy
                t_write = time.monotonic()
                for k in keys:
                    writer.set(k, 2)
                write_took = time.monotonic() - t_write
                for t in threads:
                    t.join(5.0)
                proxy.heal()
                for k, value in zip(keys, got, strict=True):
                    if isinstance(value, Exception):
                        errors += 1
                    elif value == 1:
                        raced += 1
                        stale += l1.get(reader._key(k)) is not None
                    else:
                        not_raced += 1
                batch += 1
    result.figures.update(
        {
            "trials": batch * BATCH,
            "raced": raced,
            "not_raced": not_raced,
            "read_exceptions": errors,
            "stale_l1_entries": stale,
            "last_batch_write_seconds": round(write_took, 4),
        }
    )
    result.check("stale L1 entries afterwards", stale, "= 0", stale == 0)
    result.check(
        "trials where the old reply raced the write", raced, f">= 90% of {batch * BATCH}", raced >= 0.9 * batch * BATCH
    )
    result.check("read exceptions", errors, "= 0", errors == 0)
    return [result]
