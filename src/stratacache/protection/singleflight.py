"""In-process single-flight: concurrent callers of one key share one loader call.

Written twice on purpose (DESIGN.md §3.4): the thread flavour parks followers on a ``threading.Event``; the
asyncio flavour runs the load as its own task and every caller, the first included, awaits it through
``asyncio.shield``, so a cancelled caller never cancels the load the others are waiting for. A loader's
exception reaches every caller of that flight; nothing is cached for it.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["AsyncSingleFlight", "SingleFlight"]

T = TypeVar("T")


class _Call(Generic[T]):
    __slots__ = ("error", "event", "owner", "value")

    def __init__(self) -> None:
        self.owner = threading.get_ident()
        self.event = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


class SingleFlight:
    """Thread-safe coalescing of calls by key."""

    __slots__ = ("_calls", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Call[Any]] = {}

    def do(self, key: str, fn: Callable[[], T]) -> tuple[T, bool]:
        """Run ``fn`` unless a call for ``key`` is in flight; return ``(result, joined_another_call)``."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = _Call()
                self._calls[key] = call
        if not leader:
            if call.owner == threading.get_ident():
                raise RuntimeError(f"re-entrant load of {key!r}: its loader asked for the same key (deadlock)")
            call.event.wait()
            if call.error is not None:
                raise call.error
            return call.value, True  # type: ignore[return-value]  # set before the event, unless error
        try:
            value = fn()
            call.value = value
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                self._calls.pop(key, None)
            call.event.set()
        return value, False

    def __len__(self) -> int:
        return len(self._calls)


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # mark as retrieved: the callers have seen it, or all of them were cancelled


class AsyncSingleFlight:
    """asyncio coalescing of calls by key (one event loop per flight; other loops are not coalesced)."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[str, asyncio.Task[Any]] = {}

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Await ``fn()`` unless a call for ``key`` is in flight; return ``(result, joined_another_call)``."""
        loop = asyncio.get_running_loop()
        task = self._calls.get(key)
        if task is not None and not task.done() and task.get_loop() is loop:
            if task is asyncio.current_task():
                raise RuntimeError(f"re-entrant load of {key!r}: its loader asked for the same key (deadlock)")
            return await asyncio.shield(task), True
        task = loop.create_task(self._run(key, fn))
        task.add_done_callback(_retrieve)
        self._calls[key] = task
        return await asyncio.shield(task), False

    async def _run(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        finally:
            current = asyncio.current_task()
            if self._calls.get(key) is current:
                del self._calls[key]

    def __len__(self) -> int:
        return len(self._calls)
