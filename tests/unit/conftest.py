"""Shared fixtures of the unit tests."""

from __future__ import annotations

import threading
import types
from typing import TYPE_CHECKING, Any

import pytest

from stratacache.protection import singleflight

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.fixture
def wait_for_followers(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Make thread single-flights count their parked followers; return ``wait(n)``, which blocks until ``n`` wait.

    A follower is counted when it calls ``Event.wait`` on the flight it joined: from then on it is committed to that
    flight's result, so a test can release the leader knowing every follower has joined (no sleeps, no timing).
    Only flights created after the fixture is set up are instrumented.
    """
    cond = threading.Condition()
    waiting = [0]

    class CountingEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            with cond:
                waiting[0] += 1
                cond.notify_all()
            return super().wait(timeout)

    fake_threading: Any = types.SimpleNamespace(Event=CountingEvent, Lock=threading.Lock, get_ident=threading.get_ident)
    monkeypatch.setattr(singleflight, "threading", fake_threading)

    def wait(n: int) -> None:
        with cond:
            assert cond.wait_for(lambda: waiting[0] >= n, timeout=30), f"only {waiting[0]} of {n} followers joined"

    return wait
