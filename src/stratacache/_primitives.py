"""Small shared primitives: the MISSING sentinel and the sync/async pairs that scripts/unasync.py maps.

The async engine is the source of truth; ``scripts/unasync.py`` rewrites it into ``_sync/`` and maps each
``a``-prefixed helper here to its synchronous twin (``arun_blocking`` -> ``run_blocking``).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import threading
from typing import TYPE_CHECKING, Final, ParamSpec, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["MISSING", "Missing", "apause", "arun_blocking", "awithin", "pause", "run_blocking", "within"]

P = ParamSpec("P")
R = TypeVar("R")


class Missing(enum.Enum):
    """Type of :data:`MISSING`; an enum so that type checkers can narrow on ``is MISSING``."""

    MISSING = enum.auto()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = Missing.MISSING
"""Private sentinel telling "no entry" from a cached ``None``."""


def run_blocking(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Call ``fn`` in the current thread (the synchronous twin of :func:`arun_blocking`)."""
    return fn(*args, **kwargs)


async def arun_blocking(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a blocking call (an embedded store's I/O) in the default executor, off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))


def within(value: R, seconds: float) -> R:  # noqa: ARG001 - the sync twin: sockets enforce the deadline
    """Return ``value``: in synchronous code the socket timeouts already bounded the call that produced it."""
    return value


async def awithin(aw: Awaitable[R], seconds: float) -> R:
    """Await ``aw`` for at most ``seconds`` (``TimeoutError`` after that; the awaited call is cancelled).

    One timer per call, instead of one per socket read and write: the async Redis tier's deadline.
    """
    async with asyncio.timeout(seconds):
        return await aw


def pause(seconds: float) -> None:
    """Block this thread for ``seconds`` (background retry loops only; tests never sleep)."""
    threading.Event().wait(seconds)


async def apause(seconds: float) -> None:
    """Suspend this task for ``seconds`` (background retry loops only; tests never sleep)."""
    await asyncio.sleep(seconds)
