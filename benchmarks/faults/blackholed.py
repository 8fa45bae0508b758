"""Scenario 2: Redis blackholed (a ``FaultProxy`` swallowing both ways), then frozen (SIGSTOP) without a proxy."""

from __future__ import annotations

import time

from benchmarks.faults.common import Result, pause, redis_server
from benchmarks.faults.workload import Options, Workload
from stratacache.testing import FaultProxy


def _timeline(quick: bool) -> tuple[float, float, float]:
    return (1.0, 1.5, 2.5) if quick else (2.0, 3.0, 5.0)


def run_blackhole(*, quick: bool) -> Result:
    warm, outage, observe = _timeline(quick)
    result = Result("2a", "Redis blackholed (FaultProxy.blackhole), healed")
    with redis_server() as server, FaultProxy(server.host, server.port) as proxy:
        load = Workload(proxy.url(), Options(), seed=2)
        load.start()
        try:
            t_warm = time.monotonic()
            pause(warm)
            fault = time.monotonic()
            proxy.blackhole()
            pause(outage)
            proxy.heal()
            healed = time.monotonic()
            pause(observe)
            end = time.monotonic()
        finally:
            load.stop()
        load.report(result, warm=t_warm + warm / 2, fault=fault, healed=healed, end=end)
    return result


def run_sigstop(*, quick: bool) -> Result:
    warm, outage, observe = _timeline(quick)
    result = Result("2b", "Redis frozen (SIGSTOP), resumed (SIGCONT)")
    with redis_server() as server:
        load = Workload(server.url, Options(), seed=3)
        load.start()
        try:
            t_warm = time.monotonic()
            pause(warm)
            fault = time.monotonic()
            server.pause()
            try:
                pause(outage)
            finally:
                server.resume()
            healed = time.monotonic()
            pause(observe)
            end = time.monotonic()
        finally:
            load.stop()
        result.notes.append(
            "A frozen server keeps its data: deletes made meanwhile are journaled and must be replayed before "
            "Redis is read again (stale reads would show it)."
        )
        load.report(result, warm=t_warm + warm / 2, fault=fault, healed=healed, end=end)
    return result


def run(*, quick: bool) -> list[Result]:
    return [run_blackhole(quick=quick), run_sigstop(quick=quick)]
