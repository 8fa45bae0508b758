"""Scenario 1: Redis killed (SIGKILL) under load, then restarted on the same port (empty: nothing persisted)."""

from __future__ import annotations

import time

from benchmarks.faults.common import Result, pause, redis_server
from benchmarks.faults.workload import Options, Workload


def run(*, quick: bool) -> list[Result]:
    warm, outage, observe = (1.0, 1.5, 2.5) if quick else (2.0, 3.0, 5.0)
    result = Result("1", "Redis killed mid-load (SIGKILL), restarted")
    with redis_server() as server:
        load = Workload(server.url, Options())
        load.start()
        try:
            t_warm = time.monotonic()
            pause(warm)
            fault = time.monotonic()
            server.kill()
            pause(outage)
            restart = time.monotonic()
            server.restart()
            healed = time.monotonic()
            pause(observe)
            end = time.monotonic()
        finally:
            load.stop()
        result.figures["restart_seconds"] = round(healed - restart, 3)
        result.notes.append(
            "The outage lasts from the SIGKILL until the restarted server answers PING; recovery is timed from then."
        )
        load.report(result, warm=t_warm + warm / 2, fault=fault, healed=healed, end=end)
    return [result]
