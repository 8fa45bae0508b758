"""Work that outlives the call that started it: background refreshes and loads a caller stopped waiting for.

Written twice on purpose, like single-flight (DESIGN.md §3.4): the engine's async source uses
:class:`AsyncBackground` (tasks, tracked and awaited on ``close``) and its generated sync twin uses
:class:`Background` (a small thread pool, shut down on ``close``). Both bound how many jobs may be pending, so a
burst of refreshes cannot queue without limit: ``start`` returns ``None`` when the bound is reached.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["AsyncBackground", "Background"]

log = logging.getLogger("stratacache")
MAX_PENDING: Final = 1024


class Background:
    """A bounded thread pool for the sync engine (threads are created on first use)."""

    def __init__(self, workers: int = 4, max_pending: int = MAX_PENDING) -> None:
        self._workers = workers
        self._max = max_pending
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = False

    def start(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any] | None:
        """Run ``fn`` in a worker thread; ``None`` if the pool is full or closed."""
        with self._lock:
            if self._closed or self._pending >= self._max:
                return None
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self._workers, thread_name_prefix="stratacache")
            self._pending += 1
            future = self._pool.submit(fn)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending -= 1
        if not future.cancelled() and future.exception() is not None:
            log.debug("stratacache background job failed", exc_info=future.exception())

    def wait(self, job: concurrent.futures.Future[Any], seconds: float | None) -> Any:
        """The job's result; ``TimeoutError`` after ``seconds`` (the job goes on)."""
        return job.result(seconds)

    def close(self) -> None:
        """Wait for every job, then stop the threads."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


class AsyncBackground:
    """Tracked tasks for the async engine: none is garbage-collected mid-flight, all are awaited on close."""

    def __init__(self, workers: int = 4, max_pending: int = MAX_PENDING) -> None:
        del workers  # tasks need no pool
        self._max = max_pending
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def start(self, fn: Callable[[], Awaitable[Any]]) -> asyncio.Task[Any] | None:
        """Run ``fn()`` as a task; ``None`` if too many are pending or the owner is closed."""
        if self._closed or len(self._tasks) >= self._max:
            return None
        task = asyncio.ensure_future(fn())
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("stratacache background job failed", exc_info=task.exception())

    async def wait(self, job: asyncio.Task[Any], seconds: float | None) -> Any:
        """The job's result; ``TimeoutError`` after ``seconds`` (the job goes on: it is shielded)."""
        return await asyncio.wait_for(asyncio.shield(job), seconds)

    async def close(self) -> None:
        """Wait for every pending job (their errors were already logged)."""
        self._closed = True
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
