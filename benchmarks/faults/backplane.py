"""Scenario 5: the backplane lost: its subscription killed (``CLIENT KILL TYPE pubsub``), or the server paused 3 s.

Two caches over one server stand for two processes: a **reader** ``B = Cache(MemoryTier(), RedisTier(url))``
whose L1 holds every key, and a **writer** ``A = Cache(RedisTier(url))``. A source dict holds each key's version.
One trial:

1. B reads every key (its L1 now holds version ``v``); a thread in B keeps reading every key with
   ``get_or_load`` (1 ms between rounds), noting for each read its start, its version and whether B's L1 served
   it; a thread in A does one ``get`` every 5 ms (a live process: it is what lets A replay its journal).
2. The fault: the subscription is killed, or the server is frozen (SIGSTOP) for 3 s.
3. Right after it, A commits ``v + 1`` of every key to the source and calls ``A.delete(key)``: on a killed
   subscription the delete reaches Redis but its message is lost for B; on a frozen server it is journaled by A.
4. A monitor samples B's link every 0.5 ms: **detection** is the first sample where the link is lost (or its
   loss counter moved); it must come within 2 heartbeats of the fault.
5. The trial goes on until 1 s after B's link is back (and the server resumed).

A read of B is **stale after detection** when it started later than both the detection and the return of A's
delete of that key plus a grace of 50 ms (the backplane's own p99 bound, scenario 4, so that an invalidation in
flight on a healthy link is not counted), and returned a version older than the committed one. Stale reads served
by B's L1 must be 0; stale reads served by Redis (or through it) are reported separately, with their cause.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from benchmarks.faults.common import Result, latency_summary, ms, pause, prefix, redis_server, wait_until
from stratacache import Cache, MemoryTier, RedisTier

HEARTBEAT = 0.2
TIMEOUT = 0.05
KEYS = 20
GRACE = 0.050
PAUSE_FOR = 3.0


def _tier(url: str, pfx: str) -> RedisTier:
    return RedisTier(
        url, prefix=pfx, heartbeat=HEARTBEAT, timeout=TIMEOUT, connect_timeout=TIMEOUT, breaker_open_for=0.5
    )


def _trial(server: Any, fault: str, seed: int) -> dict[str, Any]:
    pfx = prefix()
    keys = [f"row:{seed}:{i}" for i in range(KEYS)]
    db = dict.fromkeys(keys, 1)
    reader = Cache(MemoryTier(), _tier(server.url, pfx), namespace="bp")
    writer = Cache(_tier(server.url, pfx), namespace="bp")
    link: Any = reader._lower[0]._link
    l1: Any = reader._l1
    reads: list[tuple[str, int, float, bool]] = []
    errors: list[str] = []
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            for k in keys:
                hits = l1.counters.hits
                start = time.monotonic()
                try:
                    v = reader.get_or_load(k, lambda k=k: db[k])
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                reads.append((k, v, start, l1.counters.hits > hits))
            pause(0.001)

    def keep_alive() -> None:
        while not stop.is_set():
            try:
                writer.get("keep-alive")
            except Exception as exc:
                errors.append(f"writer {type(exc).__name__}: {exc}")
            pause(0.005)

    samples: list[tuple[float, bool, int]] = []

    def monitor() -> None:
        while not stop.is_set():
            samples.append((time.monotonic(), bool(link.lost), link.losses))
            pause(0.0005)

    with reader, writer:
        if wait_until(lambda: not link.lost, 5.0) is None:
            raise RuntimeError("the reader's backplane did not subscribe")
        for k in keys:
            reader.get_or_load(k, lambda k=k: db[k])
        threads = [threading.Thread(target=f, daemon=True) for f in (read_loop, keep_alive, monitor)]
        for t in threads:
            t.start()
        pause(0.2)
        losses0 = link.losses
        t_fault = time.monotonic()
        if fault == "pause":
            server.pause()
        else:
            admin = server.client()
            try:
                admin.client_kill_filter(_type="pubsub")
            finally:
                admin.close()
        invalidated: dict[str, float] = {}
        try:
            for k in keys:
                db[k] += 1
                writer.delete(k)
                invalidated[k] = time.monotonic()
            if fault == "pause":
                pause(max(0.0, t_fault + PAUSE_FOR - time.monotonic()))
        finally:
            if fault == "pause":
                server.resume()
        t_resumed = time.monotonic()
        wait_until(lambda: link.losses > losses0 and not link.lost, 10.0)
        pause(1.0)
        stop.set()
        for t in threads:
            t.join(5.0)
    t_detect = next((t for t, lost, n in samples if t >= t_fault and (lost or n > losses0)), None)
    t_back = None
    if t_detect is not None:
        t_back = next((t for t, lost, _ in samples if t > t_detect and not lost), None)
    stale_l1 = stale_l2 = 0
    examples: list[str] = []
    checked = 0
    last_stale: float | None = None
    for k, v, start, from_l1 in reads:
        if t_detect is None or start <= max(t_detect, invalidated.get(k, float("inf"))) + GRACE:
            continue
        checked += 1
        if v < db[k]:
            if from_l1:
                stale_l1 += 1
            else:
                stale_l2 += 1
            last_stale = start if last_stale is None else max(last_stale, start)
            if len(examples) < 3:
                source = "L1" if from_l1 else "Redis/loader"
                examples.append(f"{k} v{v} < v{db[k]} from {source}, {ms(start - t_resumed)} ms after recovery")
    return {
        "detect_s": None if t_detect is None else t_detect - t_fault,
        "back_after_detect_s": None if t_back is None or t_detect is None else t_back - t_detect,
        "writes_seconds": max(invalidated.values()) - t_fault if invalidated else None,
        "reads_checked": checked,
        "stale_l1": stale_l1,
        "stale_not_l1": stale_l2,
        "last_stale_read_after_recovery_s": None if last_stale is None else last_stale - t_resumed,
        "examples": examples,
        "errors": errors[:5],
        "error_count": len(errors),
    }


def _scenario(fault: str, trials: int, rid: str, title: str) -> Result:
    result = Result(rid, title)
    result.params.update({"heartbeat": HEARTBEAT, "timeout": TIMEOUT, "keys": KEYS, "trials": trials})
    if fault == "pause":
        result.params["paused_seconds"] = PAUSE_FOR
    runs = []
    with redis_server() as server:
        for i in range(trials):
            runs.append(_trial(server, fault, i))
    detect = [r["detect_s"] for r in runs if r["detect_s"] is not None]
    undetected = sum(r["detect_s"] is None for r in runs)
    stale_l1 = sum(r["stale_l1"] for r in runs)
    stale_other = sum(r["stale_not_l1"] for r in runs)
    errors = sum(r["error_count"] for r in runs)
    lat = latency_summary(detect)
    result.figures.update(
        {
            "detection": lat,
            "undetected_trials": undetected,
            "stale_l1_reads_after_detection": stale_l1,
            "stale_reads_from_redis_after_detection": stale_other,
            "read_exceptions": errors,
            "stale_window_ms": max((ms(r["last_stale_read_after_recovery_s"]) or 0.0 for r in runs), default=0.0),
            "trials": runs,
        }
    )
    bound = 2 * HEARTBEAT * 1000
    worst = lat["max_ms"]
    result.check("detection p50 (ms)", lat["p50_ms"], f"<= {bound:.0f}", undetected == 0 and lat["p50_ms"] <= bound)
    result.check("detection max (ms)", worst, f"<= {bound:.0f} (2 heartbeats)", undetected == 0 and worst <= bound)
    result.check("stale L1 reads after detection", stale_l1, "= 0", stale_l1 == 0)
    result.check("stale reads via Redis after detection", stale_other, "= 0", stale_other == 0)
    result.check("read exceptions", errors, "= 0", errors == 0)
    return result


def run(*, quick: bool) -> list[Result]:
    return [
        _scenario("kill", 3 if quick else 10, "5a", "Backplane subscription killed (CLIENT KILL TYPE pubsub)"),
        _scenario("pause", 1 if quick else 3, "5b", f"Server paused {PAUSE_FOR:.0f} s (SIGSTOP)"),
    ]
