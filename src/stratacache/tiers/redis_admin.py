"""Raw facts about a Redis/Valkey deployment for ``stratacache doctor``: measured, never judged, never raising.

This is the only part of ``doctor`` that speaks to redis-py (see the import-linter contract "redis-py lives only
in the Redis tier"): :func:`diagnose` connects with the tier's own timeouts and credentials, as the store would,
runs read-only commands (``PING``, ``INFO``, ``CONFIG GET``, ``TIME``, ``CLUSTER INFO``/``NODES``, ``SENTINEL
MASTER``/``CKQUORUM``) and returns what it saw. Every command that fails (unreachable, renamed, denied by an ACL)
is recorded as an error string next to the fact it would have produced. The judgement lives in
``stratacache.doctor``.

Synchronous on purpose: ``doctor`` is a command-line check, and one client per call is all it needs.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
import redis.backoff
import redis.retry

from stratacache.tiers import redis_link

if TYPE_CHECKING:
    from stratacache.tiers.redis_spec import RedisTier

__all__ = ["ClockSample", "RedisDiagnostics", "SentinelFacts", "diagnose"]

_CONFIG_PATTERNS = ("maxmemory*", "save", "append*")


@dataclass(frozen=True, slots=True)
class ClockSample:
    """One ``TIME`` call: the local wall clock before and after, and the server's time, all in seconds."""

    local_before: float
    server: float
    local_after: float

    @property
    def rtt(self) -> float:
        """The round trip of the call."""
        return self.local_after - self.local_before

    @property
    def skew(self) -> float:
        """Server time minus local time at the middle of the round trip (positive: the server is ahead)."""
        return self.server - (self.local_before + self.local_after) / 2


@dataclass(frozen=True, slots=True)
class SentinelFacts:
    """What one listed Sentinel said about the service (``error`` when it did not answer)."""

    address: str
    error: str | None = None
    master: str | None = None
    """``host:port`` of the master it reports."""
    flags: tuple[str, ...] = ()
    quorum: int | None = None
    other_sentinels: int | None = None
    replicas: int | None = None
    ckquorum: str | None = None
    """The reply of ``SENTINEL CKQUORUM`` (``OK ...``) or the error it raised (``NOQUORUM ...``)."""


@dataclass(frozen=True, slots=True)
class RedisDiagnostics:
    """Everything :func:`diagnose` measured on one tier (see the module docstring).

    ``error`` set means no server answered ``PING``: nothing else was measured but the Sentinels.
    """

    kind: str
    address: str = ""
    """``host:port`` (or the socket path) of the server the facts come from: the master, the node reached."""
    error: str | None = None
    connect_seconds: float = 0.0
    pings: tuple[float, ...] = ()
    """Seconds per ``PING`` round trip."""
    info: dict[str, Any] = field(default_factory=dict)
    """``INFO server``, ``memory``, ``persistence``, ``replication`` and ``cluster`` merged (those that answered)."""
    info_error: str | None = None
    config: dict[str, str] = field(default_factory=dict)
    config_error: str | None = None
    clock: tuple[ClockSample, ...] = ()
    clock_error: str | None = None
    sentinels: tuple[SentinelFacts, ...] = ()
    cluster_info: dict[str, str] = field(default_factory=dict)
    cluster_nodes: tuple[tuple[str, tuple[str, ...], int], ...] = ()
    """Per node of ``CLUSTER NODES``: ``(address, flags, slots served)``."""
    cluster_error: str | None = None
    backplane_error: str | None = None
    """Why subscribing to the backplane channel failed (``None``: it worked, or ``backplane=False``)."""


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _error(exc: BaseException) -> str:
    message = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {message}"


def _address(spec: RedisTier, client: Any) -> str:
    if spec.kind == "unix":
        return spec.socket_path
    if spec.kind == "sentinel":
        with contextlib.suppress(Exception):
            host, port = client.connection_pool.get_master_address()
            return f"{host}:{port}"
    with contextlib.suppress(Exception):
        kw = client.connection_pool.connection_kwargs
        if "host" in kw:
            return f"{kw['host']}:{kw['port']}"
    if spec.kind == "sentinel":
        return f"master of {spec.service!r}"
    host, port = spec.hosts[0]
    return f"{host}:{port}"


def diagnose(spec: RedisTier, *, pings: int = 20, clock_samples: int = 5) -> RedisDiagnostics:
    """Measure the deployment behind ``spec`` (see the module docstring); never raises for the server's sake."""
    sentinels = _sentinels(spec) if spec.kind == "sentinel" else ()
    start = time.perf_counter()
    try:
        client: Any = redis_link.connect_sync(spec, listen=False)
    except Exception as exc:
        return RedisDiagnostics(kind=spec.kind, error=_error(exc), sentinels=sentinels)
    try:
        try:
            client.ping()
            if spec.kind == "sentinel":  # the Sentinel pool only now knows the master
                client.ping()
        except Exception as exc:
            return RedisDiagnostics(kind=spec.kind, error=_error(exc), sentinels=sentinels)
        connect_seconds = time.perf_counter() - start
        rtts: list[float] = []
        for _ in range(pings):
            t0 = time.perf_counter()
            try:
                client.ping()
            except Exception:  # noqa: S112 - a lost ping is a missing sample; reachability was established above
                continue
            rtts.append(time.perf_counter() - t0)
        info, info_error = _info(client)
        config, config_error = _config(client)
        clock, clock_error = _clock(client, clock_samples)
        cluster_info: dict[str, str] = {}
        nodes: tuple[tuple[str, tuple[str, ...], int], ...] = ()
        cluster_error = None
        if spec.kind == "cluster":
            cluster_info, nodes, cluster_error = _cluster(client)
        backplane_error = _subscribe(spec) if spec.backplane else None
        return RedisDiagnostics(
            kind=spec.kind,
            address=_address(spec, client),
            connect_seconds=connect_seconds,
            pings=tuple(rtts),
            info=info,
            info_error=info_error,
            config=config,
            config_error=config_error,
            clock=clock,
            clock_error=clock_error,
            sentinels=sentinels,
            cluster_info=cluster_info,
            cluster_nodes=nodes,
            cluster_error=cluster_error,
            backplane_error=backplane_error,
        )
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _subscribe(spec: RedisTier) -> str | None:
    """Subscribe to the backplane channel as the store does (``backplane_url`` if set); why it failed, if it did.

    Only a subscription, confirmed, then dropped: nothing is published (a foreign message would flush every L1).
    """
    bp = spec.backplane_spec()
    try:
        client: Any = redis_link.connect_sync(bp, listen=True)
    except Exception as exc:
        return _error(exc)
    try:
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(bp.prefix + "bp")
            deadline = time.monotonic() + max(bp.timeout, 1.0)
            while time.monotonic() < deadline:
                msg = pubsub.get_message(timeout=0.05)
                if msg is not None and msg.get("type") == "subscribe":
                    return None
            return "no subscription confirmation"
        finally:
            with contextlib.suppress(Exception):
                pubsub.close()
    except Exception as exc:
        return _error(exc)
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _info(client: Any) -> tuple[dict[str, Any], str | None]:
    merged: dict[str, Any] = {}
    errors: list[str] = []
    for section in ("server", "memory", "persistence", "replication", "cluster"):
        try:
            merged.update({str(k): v for k, v in dict(client.info(section)).items()})
        except Exception as exc:
            errors.append(f"INFO {section}: {_error(exc)}")
    return merged, "; ".join(errors) or None


def _config(client: Any) -> tuple[dict[str, str], str | None]:
    config: dict[str, str] = {}
    for pattern in _CONFIG_PATTERNS:
        try:
            reply = client.config_get(pattern)
        except Exception as exc:
            return config, f"CONFIG GET {pattern}: {_error(exc)}"
        config.update({_text(k): _text(v) for k, v in dict(reply).items()})
    return config, None


def _clock(client: Any, samples: int) -> tuple[tuple[ClockSample, ...], str | None]:
    out: list[ClockSample] = []
    for _ in range(samples):
        before = time.time()
        try:
            seconds, micros = client.time()
        except Exception as exc:
            return tuple(out), f"TIME: {_error(exc)}"
        after = time.time()
        out.append(ClockSample(before, int(seconds) + int(micros) / 1e6, after))
    return tuple(out), None


def _parse_lines(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            out[key] = value
    return out


def _slots(fields: list[str]) -> int:
    n = 0
    for part in fields:
        if part.startswith("["):  # a slot being imported or migrated, not served
            continue
        lo, _, hi = part.partition("-")
        if lo.isdigit():
            n += int(hi) - int(lo) + 1 if hi.isdigit() else 1
    return n


def _cluster(client: Any) -> tuple[dict[str, str], tuple[tuple[str, tuple[str, ...], int], ...], str | None]:
    try:
        info = _parse_lines(_text(client.execute_command("CLUSTER", "INFO")))
        raw = _text(client.execute_command("CLUSTER", "NODES"))
    except Exception as exc:
        return {}, (), _error(exc)
    nodes = []
    for line in raw.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        address = parts[1].partition("@")[0].partition(",")[0]
        nodes.append((address, tuple(parts[2].split(",")), _slots(parts[8:])))
    return info, tuple(nodes), None


def _sentinels(spec: RedisTier) -> tuple[SentinelFacts, ...]:
    kw = spec.sentinel_kwargs()
    kw["retry"] = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
    out = []
    for host, port in spec.hosts:
        address = f"{host}:{port}"
        client: Any = redis.Redis(host=host, port=port, **kw)
        try:
            try:
                state = client.sentinel_master(spec.service)
            except Exception as exc:
                out.append(SentinelFacts(address, error=_error(exc)))
                continue
            try:
                ckquorum = _text(client.execute_command("SENTINEL", "CKQUORUM", spec.service))
            except Exception as exc:
                ckquorum = _error(exc)
            flags = state.get("flags", "")
            out.append(
                SentinelFacts(
                    address,
                    master=f"{state.get('ip')}:{state.get('port')}",
                    flags=tuple(sorted(flags if isinstance(flags, set) else str(flags).split(","))),
                    quorum=_int_or_none(state.get("quorum")),
                    other_sentinels=_int_or_none(state.get("num-other-sentinels")),
                    replicas=_int_or_none(state.get("num-slaves")),
                    ckquorum=ckquorum,
                )
            )
        finally:
            with contextlib.suppress(Exception):
                client.close()
    return tuple(out)


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
