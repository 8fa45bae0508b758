"""Scenario 3: Redis slow: every reply delayed 200 ms (``FaultProxy.delay``), four times the op timeout."""

from __future__ import annotations

import time

from benchmarks.faults.common import Result, pause, redis_server
from benchmarks.faults.workload import Options, Workload
from stratacache.testing import FaultProxy

DELAY = 0.2


def run(*, quick: bool) -> list[Result]:
    warm, slow, observe = (1.0, 1.5, 2.5) if quick else (2.0, 3.0, 5.0)
    result = Result("3", f"Redis slow (every reply delayed {DELAY * 1000:.0f} ms)")
    opts = Options()
    with redis_server() as server, FaultProxy(server.host, server.port) as proxy:
        load = Workload(proxy.url(), opts, seed=4)
        load.start()
        try:
            t_warm = time.monotonic()
            pause(warm)
            fault = time.monotonic()
            proxy.delay(DELAY, direction="downstream")
            pause(slow)
            proxy.heal()
            healed = time.monotonic()
            pause(observe)
            end = time.monotonic()
        finally:
            load.stop()
        result.params["reply_delay"] = DELAY
        load.report(result, warm=t_warm + warm / 2, fault=fault, healed=healed, end=end)
    return [result]
