"""Single-flight coalescing, thread and asyncio flavours; overlap is forced with events, never by timing."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import pytest

from stratacache.protection.singleflight import AsyncSingleFlight, SingleFlight

if TYPE_CHECKING:
    from collections.abc import Callable

N = 8


class LoaderFailedError(Exception):
    pass


def _start(n: int, target: Callable[[int], None]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def _join(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)


# ------------------------------------------------------------------ threads


def test_sequential_calls_each_run() -> None:
    flight = SingleFlight()
    calls: list[int] = []
    assert flight.do("k", lambda: calls.append(1) or "a") == ("a", False)
    assert flight.do("k", lambda: calls.append(2) or "b") == ("b", False)
    assert calls == [1, 2]
    assert len(flight) == 0


def test_concurrent_callers_share_one_call(wait_for_followers: Callable[[int], None]) -> None:
    flight = SingleFlight()
    release = threading.Event()
    entered = threading.Event()
    calls: list[int] = []
    results: dict[int, tuple[Any, bool]] = {}

    def load() -> dict[str, int]:
        calls.append(1)
        entered.set()
        assert release.wait(30)
        return {"v": 42}

    def caller(i: int) -> None:
        results[i] = flight.do("k", load)

    leader = _start(1, caller)
    assert entered.wait(30)
    followers = _start(N - 1, lambda i: caller(i + 1))
    wait_for_followers(N - 1)
    assert len(flight) == 1
    release.set()
    _join(leader + followers)

    assert calls == [1]
    assert len(results) == N
    values = [v for v, _ in results.values()]
    assert all(v is values[0] for v in values)  # the very same object
    assert sorted(joined for _, joined in results.values()) == [False] + [True] * (N - 1)
    assert len(flight) == 0


def test_exception_reaches_every_waiter(wait_for_followers: Callable[[int], None]) -> None:
    flight = SingleFlight()
    release = threading.Event()
    entered = threading.Event()
    calls: list[int] = []
    errors: dict[int, BaseException] = {}

    def load() -> int:
        calls.append(1)
        entered.set()
        assert release.wait(30)
        raise LoaderFailedError("db down")

    def caller(i: int) -> None:
        try:
            flight.do("k", load)
        except LoaderFailedError as exc:
            errors[i] = exc

    leader = _start(1, caller)
    assert entered.wait(30)
    followers = _start(N - 1, lambda i: caller(i + 1))
    wait_for_followers(N - 1)
    release.set()
    _join(leader + followers)

    assert calls == [1]
    assert sorted(errors) == list(range(N))
    assert len(flight) == 0
    # nothing is remembered: the next call runs again
    assert flight.do("k", lambda: "recovered") == ("recovered", False)


def test_different_keys_do_not_wait_for_each_other() -> None:
    flight = SingleFlight()
    release = threading.Event()
    entered = threading.Event()

    def slow() -> str:
        entered.set()
        assert release.wait(30)
        return "slow"

    box: list[Any] = []
    t = threading.Thread(target=lambda: box.append(flight.do("a", slow)))
    t.start()
    assert entered.wait(30)
    assert flight.do("b", lambda: "fast") == ("fast", False)  # returns while "a" is still in flight
    assert len(flight) == 1
    release.set()
    t.join(30)
    assert box == [("slow", False)]


# ------------------------------------------------------------------ asyncio


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0)
    pytest.fail("condition never became true")


@pytest.mark.asyncio
async def test_async_callers_share_one_call() -> None:
    flight = AsyncSingleFlight()
    release = asyncio.Event()
    calls: list[int] = []

    async def load() -> list[int]:
        calls.append(1)
        await release.wait()
        return [1, 2]

    tasks = [asyncio.create_task(flight.do("k", load)) for _ in range(N)]
    await _until(lambda: calls == [1])
    assert len(flight) == 1
    release.set()
    results = await asyncio.gather(*tasks)
    assert calls == [1]
    assert all(v is results[0][0] for v, _ in results)
    assert sorted(j for _, j in results) == [False] + [True] * (N - 1)
    assert len(flight) == 0


@pytest.mark.parametrize("cancelled", [0, 1])
@pytest.mark.asyncio
async def test_cancelling_one_waiter_does_not_cancel_the_load(cancelled: int) -> None:
    flight = AsyncSingleFlight()
    release = asyncio.Event()
    calls: list[int] = []
    finished: list[str] = []

    async def load() -> str:
        calls.append(1)
        await release.wait()
        finished.append("done")
        return "value"

    tasks = [asyncio.create_task(flight.do("k", load)) for _ in range(3)]
    await _until(lambda: calls == [1])
    tasks[cancelled].cancel()  # 0: the caller that started the load; 1: a follower
    await _until(tasks[cancelled].done)
    assert tasks[cancelled].cancelled()
    assert len(flight) == 1
    release.set()
    others = [t for i, t in enumerate(tasks) if i != cancelled]
    results = await asyncio.gather(*others)
    assert [v for v, _ in results] == ["value", "value"]
    assert finished == ["done"]
    assert calls == [1]


@pytest.mark.asyncio
async def test_load_finishes_even_if_every_caller_is_cancelled() -> None:
    flight = AsyncSingleFlight()
    release = asyncio.Event()
    finished: list[str] = []

    async def load() -> str:
        await release.wait()
        finished.append("done")
        return "value"

    tasks = [asyncio.create_task(flight.do("k", load)) for _ in range(2)]
    await _until(lambda: len(flight) == 1)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    release.set()
    await _until(lambda: finished == ["done"])
    await _until(lambda: len(flight) == 0)


@pytest.mark.asyncio
async def test_async_exception_reaches_every_waiter() -> None:
    flight = AsyncSingleFlight()
    release = asyncio.Event()
    calls: list[int] = []

    async def load() -> int:
        calls.append(1)
        await release.wait()
        raise LoaderFailedError("db down")

    tasks = [asyncio.create_task(flight.do("k", load)) for _ in range(N)]
    await _until(lambda: calls == [1])
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert calls == [1]
    assert all(isinstance(r, LoaderFailedError) for r in results)
    assert len(flight) == 0

    async def ok() -> str:
        return "recovered"

    assert await flight.do("k", ok) == ("recovered", False)
