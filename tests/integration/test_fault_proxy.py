"""``stratacache.testing.FaultProxy`` against a real TCP server: every fault mode, from sync and async tests.

The server is a threaded echo server on 127.0.0.1 that counts the bytes it receives, so a test can tell
"the request reached the server" from "the reply reached the client". Nothing sleeps: waits are socket
timeouts, ``Condition.wait_for`` and ``asyncio.wait_for``, each bounded by ``BOUND`` (never reached by a passing
run). The only timing assertions are lower bounds that prove a delay exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import socketserver
import threading
import time
from typing import TYPE_CHECKING

import pytest

from stratacache.testing import FaultProxy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

BOUND = 5.0  # seconds a failing run may wait; a passing run never does
QUIET = 0.3  # seconds of silence that count as "nothing arrives"


class EchoServer(socketserver.ThreadingTCPServer):
    """Echoes every chunk back (unless ``echo`` is cleared) and counts the bytes it received."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), EchoHandler)
        self.cond = threading.Condition()
        self.received = 0
        self.finished = 0  # connections whose client half-closed (the handler saw EOF)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        return str(host), int(port)

    def wait_received(self, n: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.received >= n, timeout=BOUND), (
                f"the server received {self.received} bytes, not {n}"
            )


class EchoHandler(socketserver.BaseRequestHandler):
    server: EchoServer

    def handle(self) -> None:
        while True:
            try:
                data = self.request.recv(65536)
            except OSError:
                return
            if not data:
                with self.server.cond:
                    self.server.finished += 1
                    self.server.cond.notify_all()
                return
            with self.server.cond:
                self.server.received += len(data)
                self.server.cond.notify_all()
            try:
                self.request.sendall(data)
            except OSError:
                return


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(BOUND)


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(*echo.address) as p:
        yield p


@pytest.fixture
def connect() -> Iterator[Callable[[FaultProxy], socket.socket]]:
    """``connect(proxy)`` opens a client socket (timeout ``BOUND``); all are closed at teardown."""
    opened: list[socket.socket] = []

    def open_one(p: FaultProxy) -> socket.socket:
        sock = socket.create_connection(p.address, timeout=BOUND)
        opened.append(sock)
        return sock

    yield open_one
    for sock in opened:
        sock.close()


def recv_exactly(sock: socket.socket, n: int, timeout: float = BOUND) -> bytes:
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, f"the connection closed after {len(buf)} of {n} bytes"
        buf += chunk
    return buf


def round_trip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    return recv_exactly(sock, len(payload))


def assert_silent(sock: socket.socket) -> None:
    """Nothing arrives for ``QUIET`` seconds, and the connection is not closed either."""
    sock.settimeout(QUIET)
    try:
        data = sock.recv(1024)
    except TimeoutError:
        return
    pytest.fail(f"received {data!r}" if data else "the connection was closed")


def assert_closed_by_peer(sock: socket.socket) -> None:
    """The peer reset or closed the connection (well within ``BOUND``)."""
    sock.settimeout(BOUND)
    try:
        data = sock.recv(1024)
    except ConnectionResetError:
        return
    assert data == b"", f"the connection is still open: received {data!r}"


def assert_refused(p: FaultProxy) -> None:
    """A new connection is closed or reset at once (the reset may even beat ``connect()``'s return)."""
    try:
        sock = socket.create_connection(p.address, timeout=BOUND)
    except ConnectionResetError:
        return
    with sock:
        assert_closed_by_peer(sock)


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    pause = threading.Event()
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.01)


def proxy_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("FaultProxy")]


# ------------------------------------------------------------------ plain forwarding and the public surface


def test_forwards_both_ways_and_counts(proxy: FaultProxy, echo: EchoServer, connect) -> None:
    sock = connect(proxy)
    assert round_trip(sock, b"hello\n") == b"hello\n"
    assert round_trip(sock, b"x" * 100_000) == b"x" * 100_000
    assert proxy.connections == 1
    stats = proxy.stats
    assert (stats.bytes_up, stats.bytes_down, stats.accepted, stats.dropped) == (100_006, 100_006, 1, 0)
    assert echo.received == 100_006
    sock.close()
    wait_until(lambda: proxy.connections == 0, "the proxy to notice the client closed")


def test_address_and_url(proxy: FaultProxy) -> None:
    assert proxy.host == "127.0.0.1"
    assert proxy.port > 0
    assert proxy.address == ("127.0.0.1", proxy.port)
    assert proxy.url() == f"redis://127.0.0.1:{proxy.port}/0"
    assert proxy.url("rediss", db=3) == f"rediss://127.0.0.1:{proxy.port}/3"


def test_misuse_is_refused(echo: EchoServer) -> None:
    p = FaultProxy(*echo.address)
    with pytest.raises(RuntimeError, match="picked"):
        _ = p.port
    with pytest.raises(ValueError, match="direction"):
        p.delay(0.1, direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        p.delay(-1)
    with p, pytest.raises(RuntimeError, match="once"):
        p.start()
    with pytest.raises(RuntimeError, match="once"):
        p.start()


def test_an_unreachable_target_closes_the_client(caplog) -> None:
    with socket.socket() as spare:  # a port nothing listens on
        spare.bind(("127.0.0.1", 0))
        dead_port = spare.getsockname()[1]
    with FaultProxy("127.0.0.1", dead_port) as p:
        assert_refused(p)
        assert p.stats.accepted == 0
    assert "cannot reach" in caplog.text


# ------------------------------------------------------------------ delay


@pytest.mark.parametrize(("direction", "hops"), [("downstream", 1), ("upstream", 1), ("both", 2)])
def test_delay_holds_each_round_trip(proxy: FaultProxy, connect, direction, hops) -> None:
    sock = connect(proxy)
    assert round_trip(sock, b"warm\n") == b"warm\n"
    proxy.delay(0.2, direction=direction)
    started = time.monotonic()
    assert round_trip(sock, b"slow\n") == b"slow\n"
    assert time.monotonic() - started >= 0.2 * hops


def test_delay_applies_to_new_connections_and_keeps_order(proxy: FaultProxy, connect) -> None:
    proxy.delay(0.2, direction="both")
    sock = connect(proxy)
    messages = [b"msg-%03d\n" % i for i in range(200)]
    started = time.monotonic()
    for message in messages:
        sock.sendall(message)
    expected = b"".join(messages)
    assert recv_exactly(sock, len(expected)) == expected
    assert time.monotonic() - started >= 0.4


def test_heal_releases_chunks_held_by_a_delay(proxy: FaultProxy, connect) -> None:
    sock = connect(proxy)
    proxy.delay(60)  # far beyond BOUND: only heal() can let the reply through in time
    sock.sendall(b"held\n")
    assert_silent(sock)
    proxy.heal()
    assert recv_exactly(sock, 5) == b"held\n"


# ------------------------------------------------------------------ blackhole


def test_blackhole_swallows_everything_and_keeps_connections(proxy: FaultProxy, echo: EchoServer, connect) -> None:
    sock = connect(proxy)
    assert round_trip(sock, b"before\n") == b"before\n"
    proxy.blackhole()
    sock.sendall(b"lost\n")
    assert_silent(sock)
    fresh = connect(proxy)  # new connections are accepted too, and answered by nothing
    fresh.sendall(b"lost too\n")
    assert_silent(fresh)
    assert echo.received == 7, "a blackholed request reached the server"
    assert proxy.connections == 2
    proxy.heal()
    assert round_trip(sock, b"after\n") == b"after\n"
    assert round_trip(fresh, b"after too\n") == b"after too\n"


def test_a_half_close_is_held_by_a_blackhole_until_heal(proxy: FaultProxy, echo: EchoServer, connect) -> None:
    sock = connect(proxy)
    assert round_trip(sock, b"ping\n") == b"ping\n"
    proxy.blackhole()
    sock.shutdown(socket.SHUT_WR)
    assert_silent(sock)  # neither the server's close nor anything else comes back
    assert echo.finished == 0, "the server saw the client's half-close through a blackhole"
    proxy.heal()
    with echo.cond:
        assert echo.cond.wait_for(lambda: echo.finished == 1, timeout=BOUND)
    assert_closed_by_peer(sock)
    wait_until(lambda: proxy.connections == 0, "the proxy to close the finished connection")


# ------------------------------------------------------------------ half-open


def test_half_open_delivers_requests_but_no_replies(proxy: FaultProxy, echo: EchoServer, connect) -> None:
    sock = connect(proxy)
    assert round_trip(sock, b"ping\n") == b"ping\n"
    proxy.half_open()
    sock.sendall(b"request\n")
    echo.wait_received(5 + 8)
    assert_silent(sock)
    fresh = connect(proxy)
    fresh.sendall(b"new request\n")
    echo.wait_received(5 + 8 + 12)
    assert_silent(fresh)
    assert proxy.stats.bytes_down == 5
    proxy.heal()
    assert round_trip(sock, b"healed\n") == b"healed\n"
    assert round_trip(fresh, b"healed too\n") == b"healed too\n"


# ------------------------------------------------------------------ drop and reset


def test_drop_resets_connections_and_refuses_new_ones_until_heal(proxy: FaultProxy, connect) -> None:
    sock = connect(proxy)
    assert round_trip(sock, b"ping\n") == b"ping\n"
    proxy.drop()
    assert_closed_by_peer(sock)
    assert proxy.connections == 0
    assert_refused(proxy)
    assert proxy.stats.dropped == 2
    assert proxy.stats.accepted == 1
    proxy.heal()
    fresh = connect(proxy)
    assert round_trip(fresh, b"back\n") == b"back\n"


def test_reset_is_one_shot(proxy: FaultProxy, connect) -> None:
    first, second = connect(proxy), connect(proxy)
    assert round_trip(first, b"a\n") == b"a\n"
    assert round_trip(second, b"b\n") == b"b\n"
    proxy.reset()
    assert_closed_by_peer(first)
    assert_closed_by_peer(second)
    fresh = connect(proxy)  # no heal(): new connections work at once
    assert round_trip(fresh, b"fresh\n") == b"fresh\n"
    assert proxy.stats.dropped == 2
    assert proxy.connections == 1


def test_the_client_sees_a_reset_not_a_clean_close(proxy: FaultProxy, connect) -> None:
    sock = connect(proxy)
    assert round_trip(sock, b"ping\n") == b"ping\n"
    proxy.reset()
    sock.settimeout(BOUND)
    with pytest.raises(ConnectionResetError):
        sock.recv(1024)


# ------------------------------------------------------------------ threads, event loops, stop


def test_faults_can_be_set_from_another_thread(proxy: FaultProxy, connect) -> None:
    sock = connect(proxy)
    assert round_trip(sock, b"ping\n") == b"ping\n"
    worker = threading.Thread(target=proxy.half_open)
    worker.start()
    worker.join(BOUND)
    sock.sendall(b"unanswered\n")
    assert_silent(sock)


@pytest.mark.asyncio
async def test_works_inside_a_running_event_loop(echo: EchoServer) -> None:
    async with FaultProxy(*echo.address) as proxy:
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
        try:
            writer.write(b"hello\n")
            assert await asyncio.wait_for(reader.readexactly(6), BOUND) == b"hello\n"

            loop = asyncio.get_running_loop()
            proxy.delay(0.2)
            started = loop.time()
            writer.write(b"slow\n")
            assert await asyncio.wait_for(reader.readexactly(5), BOUND) == b"slow\n"
            assert loop.time() - started >= 0.2

            proxy.half_open()
            writer.write(b"unanswered\n")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.readexactly(11), QUIET)

            proxy.heal()
            writer.write(b"healed\n")
            assert await asyncio.wait_for(reader.readexactly(7), BOUND) == b"healed\n"

            proxy.drop()
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(), BOUND) == b""
        finally:
            writer.close()
            with contextlib.suppress(ConnectionResetError):
                await writer.wait_closed()
    assert proxy_threads() == []


def test_stop_closes_everything(echo: EchoServer, connect) -> None:
    before = proxy_threads()
    proxy = FaultProxy(*echo.address).start()
    sock = connect(proxy)
    assert round_trip(sock, b"ping\n") == b"ping\n"
    assert len(proxy_threads()) == len(before) + 1
    proxy.stop()
    assert proxy_threads() == before
    assert_closed_by_peer(sock)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy.address, timeout=BOUND).close()
    proxy.stop()  # idempotent
