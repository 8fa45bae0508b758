"""A throwaway ``redis-server`` for the ``redis`` suite: a free ``127.0.0.1`` port, a temporary directory, no disk.

The test suite's starter (``tests/support/servers.py``) needs pytest, which the ``bench`` extra does not install,
so this is a small one of its own: start, wait for ``PING``, stop (SIGTERM, then SIGKILL) and remove the directory.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


class ServerError(RuntimeError):
    """The server did not start in time."""


def find_binary() -> str | None:
    """The ``redis-server`` binary, or ``None`` when it is not installed."""
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """A running server; :meth:`stop` ends it and removes its directory."""

    proc: subprocess.Popen[bytes]
    port: int
    directory: Path
    version: str

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        shutil.rmtree(self.directory, ignore_errors=True)


def _version(binary: str) -> str:
    """``7.0.15`` from ``redis-server --version`` (``Redis server v=7.0.15 sha=...``)."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    for word in out.split():
        if word.startswith("v="):
            return word[2:]
    return out.strip() or "unknown"


def start(binary: str, *, attempts: int = 3) -> RedisServer:
    """Start ``binary`` on a free port (retried if the port is taken meanwhile) and wait until it answers PING."""
    version = _version(binary)
    last = ""
    for _ in range(attempts):
        directory = Path(tempfile.mkdtemp(prefix="stratacache-bench-redis-"))
        port = _free_port()
        log = directory / "server.log"
        args = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        args += ["--dir", str(directory), "--logfile", str(log), "--daemonize", "no"]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        server = RedisServer(proc, port, directory, version)
        deadline = time.monotonic() + READY_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            if _ping(port):
                return server
            time.sleep(0.02)
        with contextlib.suppress(OSError):
            last = log.read_text(encoding="utf-8", errors="replace")[-500:]
        server.stop()
    raise ServerError(f"redis-server did not answer PING on {HOST} after {attempts} attempts; log tail: {last}")
