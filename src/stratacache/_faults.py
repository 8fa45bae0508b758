"""A fault-injecting TCP proxy for tests: :class:`FaultProxy` (exported by :mod:`stratacache.testing`).

The proxy sits between a client and a real server (Redis, a test echo server) and forwards bytes both ways until
told to misbehave: delay chunks, swallow them (a blackhole or a half-open connection), reset connections or refuse
them altogether. It runs its own event loop in a daemon thread, so the same object serves plain synchronous tests,
threads and ``async`` tests alike; every fault method is thread-safe and in force for current and new connections
when it returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import socket
import struct
import threading
from typing import TYPE_CHECKING, Literal, Self

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from types import TracebackType

__all__ = ["FaultProxy", "FaultStats"]

logger = logging.getLogger("stratacache.testing")

_STOP_BOUND = 2.0  # seconds stop() may take, cleanup and thread join included
_START_BOUND = 5.0  # seconds start() waits for the listening socket
_CALL_BOUND = 2.0  # seconds a fault method waits for the proxy's loop to apply it
_CONNECT_BOUND = 5.0  # seconds the proxy waits for the target to accept a connection
_CHUNK = 65536  # bytes read at once
_QUEUE_CHUNKS = 1024  # chunks buffered per direction before reading pauses (back-pressure)
_EOF = None  # queue sentinel: the source half-closed

_Chunk = tuple[float, bytes | None]  # (loop time it arrived, data or _EOF)

Direction = Literal["upstream", "downstream", "both"]


@dataclasses.dataclass(frozen=True, slots=True)
class FaultStats:
    """Counters of a :class:`FaultProxy` (a snapshot; read ``proxy.stats`` again for fresh numbers).

    Attributes:
        bytes_up: bytes forwarded from clients to the server (swallowed bytes are not counted).
        bytes_down: bytes forwarded from the server to clients (swallowed bytes are not counted).
        accepted: client connections accepted and connected to the server.
        dropped: client connections the proxy killed: refused while dropping, or closed by ``drop()``/``reset()``.
    """

    bytes_up: int = 0
    bytes_down: int = 0
    accepted: int = 0
    dropped: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class _Mode:
    """The faults in force; replaced as a whole, so readers on the loop thread always see a consistent set."""

    delay_up: float = 0.0
    delay_down: float = 0.0
    swallow_up: bool = False
    swallow_down: bool = False
    refuse: bool = False


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close ``writer``'s connection abruptly: SO_LINGER 0 (a TCP RST where supported), then abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Connection:
    """One proxied client connection: the client side, the server side and a pump per direction."""

    def __init__(
        self,
        proxy: FaultProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.client_reader, self.client_writer = client
        self.server_reader, self.server_writer = server
        self.tasks: list[asyncio.Task[None]] = []
        self.closed = False
        self._open_directions = 2

    def start(self) -> None:
        """Start the readers and writers of both directions."""
        up: asyncio.Queue[_Chunk] = asyncio.Queue(_QUEUE_CHUNKS)
        down: asyncio.Queue[_Chunk] = asyncio.Queue(_QUEUE_CHUNKS)
        self.tasks = [
            asyncio.create_task(self._guard(self._read(self.client_reader, up, upstream=True))),
            asyncio.create_task(self._guard(self._write(up, self.server_writer, upstream=True))),
            asyncio.create_task(self._guard(self._read(self.server_reader, down, upstream=False))),
            asyncio.create_task(self._guard(self._write(down, self.client_writer, upstream=False))),
        ]

    async def _guard(self, pump: Coroutine[object, object, None]) -> None:
        """Run one pump; a socket error tears the whole connection down, anything else is logged first."""
        try:
            await pump
        except asyncio.CancelledError:
            raise
        except OSError:
            self.close(abrupt=True)
        except Exception:
            logger.exception("FaultProxy: a connection pump failed")
            self.close(abrupt=True)

    async def _read(self, reader: asyncio.StreamReader, queue: asyncio.Queue[_Chunk], *, upstream: bool) -> None:
        """Read chunks from one side and queue them, unless they are swallowed on arrival; queue EOF at the end."""
        loop = asyncio.get_running_loop()
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                await queue.put((loop.time(), _EOF))
                return
            if not self.proxy._swallowing(upstream=upstream):
                await queue.put((loop.time(), data))

    async def _write(self, queue: asyncio.Queue[_Chunk], writer: asyncio.StreamWriter, *, upstream: bool) -> None:
        """Forward queued chunks in order, each once its delay has passed; forward EOF when the source sent it."""
        while True:
            arrived, data = await queue.get()
            await self.proxy._wait_delay(arrived, upstream=upstream)
            if data is _EOF:
                # A half-close is held, not lost, while this direction is swallowed (TCP retransmits a FIN).
                await self.proxy._wait_flowing(upstream=upstream)
                self._half_close(writer)
                return
            if self.proxy._swallowing(upstream=upstream):
                continue
            self.proxy._count(len(data), upstream=upstream)
            writer.write(data)
            await writer.drain()

    def _half_close(self, writer: asyncio.StreamWriter) -> None:
        """Pass a half-close on; once both directions have ended, close the connection."""
        if writer.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()
        self._open_directions -= 1
        if self._open_directions <= 0:
            self.close(abrupt=False)

    def close(self, *, abrupt: bool) -> None:
        """Close both sides (the client side with a RST when ``abrupt``) and stop the pumps."""
        if self.closed:
            return
        self.closed = True
        if abrupt:
            _rst(self.client_writer)
            self.server_writer.transport.abort()
        else:
            self.client_writer.close()
            self.server_writer.close()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self.proxy._forget(self)


class FaultProxy:
    """A TCP proxy in front of a real server that injects network faults on demand.

    It runs its own event loop in a daemon thread, so one object works from synchronous tests, from threads and
    from inside another running event loop. Fault methods are thread-safe, take effect for current and new
    connections, and are in force when they return; :meth:`heal` ends them all. Only ``127.0.0.1`` is bound
    unless ``listen_host`` says otherwise::

        with FaultProxy("127.0.0.1", 6379) as proxy:
            client = redis.Redis.from_url(proxy.url())
            proxy.half_open()  # requests reach the server, replies never come back
            ...
            proxy.heal()

    Args:
        target_host: host of the real server.
        target_port: port of the real server.
        listen_host: address the proxy listens on.
        listen_port: port the proxy listens on; 0 (the default) picks a free one (read it from :attr:`port`).
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        self._target = (target_host, int(target_port))
        self._listen_host = listen_host
        self._listen_port = int(listen_port)
        self._mode = _Mode()
        self._lock = threading.Lock()
        self._stats = FaultStats()
        self._connections: set[_Connection] = set()
        self._handlers: set[asyncio.Task[None]] = set()  # accept callbacks still connecting to the target
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._changed: asyncio.Event | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._stopped = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Start listening (in a daemon thread running the proxy's event loop).

        Returns:
            The proxy itself, listening once this returns.

        Raises:
            RuntimeError: the proxy was started before, or its loop did not come up in time.
            OSError: the listening socket could not be bound.
        """
        if self._thread is not None or self._stopped:
            raise RuntimeError("a FaultProxy starts once")
        self._thread = threading.Thread(target=self._run, name=f"FaultProxy->{self._target[0]}:{self._target[1]}")
        self._thread.daemon = True
        self._thread.start()
        if not self._started.wait(_START_BOUND):
            self.stop()
            raise RuntimeError("FaultProxy did not start listening in time")
        if self._start_error is not None:
            self._thread.join(_STOP_BOUND)
            self._stopped = True
            raise self._start_error
        return self

    def stop(self) -> None:
        """Close the listening socket and every connection, and end the proxy's thread (within about 2 s).

        Idempotent; a stopped proxy cannot be started again.
        """
        self._stopped = True
        thread = self._thread
        if thread is None:
            return
        if threading.current_thread() is not thread:
            self._started.wait(_STOP_BOUND)
        loop, stop_event = self._loop, self._stop_event
        if loop is None or stop_event is None:
            thread.join(_STOP_BOUND)
            return
        if threading.current_thread() is thread:
            stop_event.set()
            return
        with contextlib.suppress(RuntimeError):  # the loop has already closed
            loop.call_soon_threadsafe(stop_event.set)
        thread.join(_STOP_BOUND)
        if thread.is_alive():
            logger.error("FaultProxy: the proxy thread did not end within %.1f s", _STOP_BOUND)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # ------------------------------------------------------------ where to connect

    @property
    def host(self) -> str:
        """The address the proxy listens on."""
        return self._listen_host

    @property
    def port(self) -> int:
        """The port the proxy listens on (the one picked, once started, when ``listen_port`` was 0).

        Raises:
            RuntimeError: ``listen_port`` was 0 and the proxy has not been started.
        """
        if self._listen_port == 0:
            raise RuntimeError("the port is picked by start()")
        return self._listen_port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` to connect to."""
        return (self.host, self.port)

    def url(self, scheme: str = "redis", db: int = 0) -> str:
        """A URL that points a client at the proxy.

        Args:
            scheme: URL scheme.
            db: database number, the URL's path.

        Returns:
            For example ``"redis://127.0.0.1:50123/0"``.
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/{db}"

    @property
    def connections(self) -> int:
        """The number of client connections currently open through the proxy."""
        with self._lock:
            return len(self._connections)

    @property
    def stats(self) -> FaultStats:
        """Counters since start: bytes forwarded each way, connections accepted and dropped."""
        with self._lock:
            return self._stats

    # ------------------------------------------------------------ faults

    def delay(self, seconds: float, *, direction: Direction = "downstream") -> None:
        """Hold every chunk forwarded in ``direction`` for ``seconds`` before passing it on.

        Chunks keep their order on each connection (they wait in a queue, each ``seconds`` after it arrived).
        The delay of the other direction is left as it is; ``delay(0, ...)`` removes it.

        Args:
            seconds: how long each chunk is held; not negative.
            direction: ``"upstream"`` (client to server), ``"downstream"`` (server to client) or ``"both"``.

        Raises:
            ValueError: ``seconds`` is negative or ``direction`` is not one of the three.
        """
        if direction not in {"upstream", "downstream", "both"}:
            raise ValueError(f"direction must be 'upstream', 'downstream' or 'both', not {direction!r}")
        seconds = float(seconds)
        if not seconds >= 0:
            raise ValueError(f"a delay is a number of seconds >= 0, not {seconds!r}")

        def change(mode: _Mode) -> _Mode:
            if direction in {"upstream", "both"}:
                mode = dataclasses.replace(mode, delay_up=seconds)
            if direction in {"downstream", "both"}:
                mode = dataclasses.replace(mode, delay_down=seconds)
            return mode

        self._apply(change)

    def blackhole(self) -> None:
        """Forward nothing either way: connections are accepted and kept open, and what they send is swallowed."""
        self._apply(lambda mode: dataclasses.replace(mode, swallow_up=True, swallow_down=True, refuse=False))

    def half_open(self) -> None:
        """Forward client to server but swallow everything server to client: writes succeed, replies never come."""
        self._apply(lambda mode: dataclasses.replace(mode, swallow_up=False, swallow_down=True, refuse=False))

    def drop(self) -> None:
        """Reset every current connection and close new ones as soon as they are accepted, until :meth:`heal`."""
        self._apply(lambda mode: dataclasses.replace(mode, refuse=True), kill=True)

    def reset(self) -> None:
        """Reset every current connection, once; new connections are served as the faults in force say."""
        self._apply(lambda mode: mode, kill=True)

    def heal(self) -> None:
        """End every fault: normal forwarding for current and new connections, chunks held by a delay go now."""
        self._apply(lambda _mode: _Mode())

    # ------------------------------------------------------------ internals: applying faults

    def _apply(self, change: Callable[[_Mode], _Mode], *, kill: bool = False) -> None:
        """Change the mode, wake waiting writers and (``kill``) reset current connections, on the loop thread."""
        with self._lock:
            self._mode = change(self._mode)
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive() or loop.is_closed():
            return
        if threading.current_thread() is thread:
            self._on_change(kill=kill)
            return

        async def on_loop() -> None:
            self._on_change(kill=kill)

        try:
            future = asyncio.run_coroutine_threadsafe(on_loop(), loop)
        except RuntimeError:  # the loop is closing
            return
        with contextlib.suppress(concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            future.result(_CALL_BOUND)

    def _on_change(self, *, kill: bool) -> None:
        """On the loop: wake writers waiting out a delay so they see the new mode; reset connections if asked."""
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()
        if kill:
            with self._lock:
                victims = list(self._connections)
            for connection in victims:
                connection.close(abrupt=True)
            with self._lock:
                self._stats = dataclasses.replace(self._stats, dropped=self._stats.dropped + len(victims))

    def _refusing(self) -> bool:
        return self._mode.refuse

    def _swallowing(self, *, upstream: bool) -> bool:
        mode = self._mode
        return mode.swallow_up if upstream else mode.swallow_down

    async def _wait_delay(self, arrived: float, *, upstream: bool) -> None:
        """Wait until ``arrived`` plus the delay in force (re-read whenever the faults change)."""
        loop = asyncio.get_running_loop()
        while True:
            mode = self._mode
            remaining = arrived + (mode.delay_up if upstream else mode.delay_down) - loop.time()
            changed = self._changed
            if remaining <= 0 or changed is None:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()

    async def _wait_flowing(self, *, upstream: bool) -> None:
        """Wait until this direction is no longer swallowed."""
        while self._swallowing(upstream=upstream):
            changed = self._changed
            if changed is None:
                return
            await changed.wait()

    def _count(self, n: int, *, upstream: bool) -> None:
        with self._lock:
            if upstream:
                self._stats = dataclasses.replace(self._stats, bytes_up=self._stats.bytes_up + n)
            else:
                self._stats = dataclasses.replace(self._stats, bytes_down=self._stats.bytes_down + n)

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    # ------------------------------------------------------------ internals: the loop thread

    def _run(self) -> None:
        """The thread: a private event loop running :meth:`_serve` until :meth:`stop`."""
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_log_loop_exception)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() or logged, never lost
            if self._started.is_set():
                logger.exception("FaultProxy: the proxy loop failed")
            else:
                self._start_error = exc
        finally:
            self._started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            except Exception:
                logger.exception("FaultProxy: shutting the loop down failed")
            finally:
                loop.close()

    async def _serve(self) -> None:
        """Listen until :meth:`stop`, then close the listening socket and every connection."""
        self._stop_event = asyncio.Event()
        self._changed = asyncio.Event()
        server = await asyncio.start_server(self._on_client, self._listen_host, self._listen_port)
        try:
            if self._listen_port == 0:
                self._listen_port = int(server.sockets[0].getsockname()[1])
            self._started.set()
            if not self._stopped:  # stop() may have run before the loop was up
                await self._stop_event.wait()
        finally:
            server.close()
            with self._lock:
                connections = list(self._connections)
            for connection in connections:
                connection.close(abrupt=True)
            pending = [t for c in connections for t in c.tasks] + list(self._handlers)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=_STOP_BOUND / 2)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_STOP_BOUND / 4):
                    await server.wait_closed()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The listening socket's callback: serve one new client, logging any failure."""
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._accept(reader, writer)
        except asyncio.CancelledError:
            _rst(writer)
            raise
        except Exception:
            logger.exception("FaultProxy: accepting a connection failed")
            _rst(writer)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one new client: refuse it while dropping, otherwise connect to the target and start pumping."""
        if self._refusing():
            self._refuse(writer)
            return
        try:
            async with asyncio.timeout(_CONNECT_BOUND):
                server = await asyncio.open_connection(*self._target)
        except (OSError, TimeoutError) as exc:
            logger.warning("FaultProxy: cannot reach %s:%s: %s", *self._target, exc)
            _rst(writer)
            return
        if self._refusing():  # drop() was called while connecting
            server[1].transport.abort()
            self._refuse(writer)
            return
        connection = _Connection(self, (reader, writer), server)
        with self._lock:
            self._connections.add(connection)
            self._stats = dataclasses.replace(self._stats, accepted=self._stats.accepted + 1)
        connection.start()

    def _refuse(self, writer: asyncio.StreamWriter) -> None:
        _rst(writer)
        with self._lock:
            self._stats = dataclasses.replace(self._stats, dropped=self._stats.dropped + 1)


def _log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """The proxy loop's exception handler: log what asyncio would otherwise print to stderr."""
    del loop
    exc = context.get("exception")
    logger.error(
        "FaultProxy: %s",
        context.get("message", "unhandled error in the proxy loop"),
        exc_info=exc if isinstance(exc, BaseException) else None,
    )
