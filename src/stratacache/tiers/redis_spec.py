"""The spec of the shared Redis/Valkey tier: URL forms, budgets and resilience settings, checked when constructed.

This module never imports redis-py: a spec can be built, compared and printed without the ``redis`` extra, and
a bad URL or option fails at the call site with :class:`~stratacache.errors.ConfigError`.
"""

from __future__ import annotations

import importlib.util
import math
import os
import urllib.parse
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Final

from stratacache.core.config import TierURL, parse_bool, parse_int, parse_size, parse_tier_url, redact_url
from stratacache.errors import ConfigError
from stratacache.tiers.specs import TierSpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from stratacache._types import AsyncStore, Clock, Store

__all__ = ["RedisTier"]

_SCHEMES: Final = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster")
_CERT_REQS: Final = ("required", "optional", "none")
# name -> (converter, minimum, maximum) of the float options a URL may set
_FLOATS: Final = {
    "timeout": (0.001, 60.0),
    "connect_timeout": (0.001, 60.0),
    "heartbeat": (0.05, 600.0),
    "lease_ttl": (0.1, 86_400.0),
    "breaker_open_for": (0.01, 3600.0),
    "outage_l1_ttl": (0.001, 86_400.0),
}
_INTS: Final = {"retries": (0, 10), "max_connections": (1, 10_000), "breaker_failures": (1, 1000)}


def _float_option(name: str, value: object) -> float:
    lo, hi = _FLOATS[name]
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{name}: {value!r} is not a number of seconds") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be seconds in [{lo}, {hi}], got {value!r}")
    return float(value)


def _int_option(name: str, value: object) -> int:
    lo, hi = _INTS[name]
    n = parse_int(value, what=name, minimum=lo)
    if n > hi:
        raise ConfigError(f"{name} must be at most {hi}, got {n}")
    return n


def _is_sentinel_url(url: object) -> bool:
    return isinstance(url, str) and url.strip().lower().partition("://")[0].endswith("+sentinel")


def _hostports(netloc: str, scheme: str) -> tuple[tuple[str, int], ...]:
    hosts = netloc.rpartition("@")[2]
    if not hosts:
        raise ConfigError(f"{scheme}:// needs host:port (e.g. {scheme}://127.0.0.1:6379/0)")
    out: list[tuple[str, int]] = []
    for part in hosts.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep:
            host, port = part.strip(), "26379" if scheme.endswith("+sentinel") else "6379"
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"bad host:port {part!r} in {scheme}:// URL")
        out.append((host, int(port)))
    return tuple(out)


@dataclass(frozen=True, slots=True, repr=False)
class RedisTier(TierSpec):
    """The shared tier (L2) on Redis 7+ or Valkey, with budgets, a circuit breaker and a backplane.

    URL forms (``stratacache.open`` accepts them too)::

        redis://[user:password@]host:6379/0        rediss://host:6380/0?ssl_ca_certs=/etc/ca.pem
        unix:///run/redis.sock?db=0                redis+sentinel://h1:26379,h2:26379/mymaster/0
        redis+cluster://h1:7000,h2:7001,h3:7002    rediss+sentinel://..., rediss+cluster://... (TLS)

    A password may also come from ``$STRATACACHE_REDIS_PASSWORD`` (and a user name from
    ``$STRATACACHE_REDIS_USERNAME``), so no secret has to live in code or in a URL.

    Args:
        url: where the server is (see above).
        prefix: prefix of every key, counter and channel stratacache writes (no ``{`` or ``}``: hash tags are
            stratacache's own, see ``docs/redis.md``).
        timeout: seconds one command may take (the socket read timeout); the cache's own budget, not
            redis-py's default of none.
        connect_timeout: seconds to establish a connection.
        retries: extra attempts after a connection error (never after a timeout, which spent the budget).
        max_connections: bound of the connection pool; a caller waits at most ``timeout`` for a connection.
        breaker_failures: consecutive failures that open the circuit breaker.
        breaker_open_for: seconds the breaker stays open before one probe is let through.
        heartbeat: seconds between backplane pings; a link silent for 1.5 heartbeats is declared lost and every
            L1 above this tier is flushed until it is back.
        backplane: subscribe to other processes' invalidations (keep on unless no L1 is used anywhere).
        backplane_url: subscribe through another endpoint than the data path (a proxy such as twemproxy or Envoy
            that cannot carry pub/sub, or a dedicated server); same URL forms and options, messages are still
            published on the data server, which must reach the subscriber (the same server or its replicas).
        lease_ttl: lifetime of a fill's lease (fence): a load slower than this is served but not stored.
        outage_l1_ttl: while this tier is unreachable, L1 copies live at most this long.
        max_value_bytes: largest stored entry; bigger values raise ``ValueTooLargeError`` at ``set``.
        strict_reads: every read fetches the bump sequence with the envelopes (one ``MGET`` of one more key), so
            another process's ``invalidate_tags``/``clear`` is seen by the very next read from Redis. ``False``
            reads with a plain ``GET`` and trusts the counters the backplane keeps fresh: such a bump is then seen
            after its message arrives (a few ms; the L1's bound anyway), for ~10% less latency per L2 hit.
        ssl_ca_certs, ssl_certfile, ssl_keyfile, ssl_cert_reqs: TLS (``rediss://``); verification is on unless
            ``ssl_cert_reqs="none"``.
        sentinel_username, sentinel_password: credentials for the Sentinels themselves (their ``requirepass`` or an
            ACL user), separate from the master's (the URL's); the password may also come from
            ``$STRATACACHE_REDIS_SENTINEL_PASSWORD`` (and the user name from
            ``$STRATACACHE_REDIS_SENTINEL_USERNAME``). ``None``: the Sentinels are asked without authenticating.
            Sentinel URLs only; never shown by ``repr``.
        sentinel_tls: whether the Sentinels are asked over TLS, with the same ``ssl_*`` options as the master.
            ``None`` (the default) follows the scheme: TLS to the Sentinels with ``rediss+sentinel://``, plain TCP
            with ``redis+sentinel://``; ``False`` keeps plain Sentinels behind TLS masters. Sentinel URLs only.

    Raises:
        ConfigError: a bad URL, scheme or option.
    """

    scheme: ClassVar[str] = "redis"
    name: ClassVar[str] = "redis"

    url: str
    prefix: str = "sc:"
    timeout: float = 0.1
    connect_timeout: float = 0.25
    retries: int = 1
    max_connections: int = 64
    breaker_failures: int = 5
    breaker_open_for: float = 1.0
    heartbeat: float = 1.0
    backplane: bool = True
    lease_ttl: float = 30.0
    outage_l1_ttl: float = 5.0
    max_value_bytes: int | str = "16MiB"
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: str = "required"
    backplane_url: str | None = None
    strict_reads: bool = True
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    sentinel_tls: bool | None = None
    # derived from url (not arguments)
    kind: str = field(init=False, default="")
    hosts: tuple[tuple[str, int], ...] = field(init=False, default=())
    db: int = field(init=False, default=0)
    service: str = field(init=False, default="")
    socket_path: str = field(init=False, default="")
    username: str | None = field(init=False, default=None, repr=False)
    password: str | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:  # noqa: C901 - one check per option, in order
        if not isinstance(self.url, str) or "://" not in self.url:
            raise ConfigError(f"RedisTier needs a URL such as redis://127.0.0.1:6379/0, got {self.url!r}")
        parts = urllib.parse.urlsplit(self.url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ConfigError(f"unknown Redis URL scheme {scheme!r}: use one of {', '.join(_SCHEMES)}")
        setattr_ = object.__setattr__
        setattr_(self, "kind", scheme.partition("+")[2] or ("unix" if scheme == "unix" else "redis"))
        setattr_(self, "username", urllib.parse.unquote(parts.username) if parts.username else None)
        setattr_(self, "password", urllib.parse.unquote(parts.password) if parts.password else None)
        if self.password is None and os.environ.get("STRATACACHE_REDIS_PASSWORD"):
            setattr_(self, "password", os.environ["STRATACACHE_REDIS_PASSWORD"])
            setattr_(self, "username", self.username or os.environ.get("STRATACACHE_REDIS_USERNAME") or None)
        self._set_location(parts, scheme)
        self._check_sentinel_options()
        if (self.tls or self.sentinel_tls) and self.ssl_cert_reqs not in _CERT_REQS:
            raise ConfigError(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
        if not isinstance(self.prefix, str) or not self.prefix or "{" in self.prefix or "}" in self.prefix:
            raise ConfigError(f"prefix must be a non-empty str without '{{' or '}}', got {self.prefix!r}")
        for name in _FLOATS:
            setattr_(self, name, _float_option(name, getattr(self, name)))
        for name in _INTS:
            setattr_(self, name, _int_option(name, getattr(self, name)))
        for flag in ("backplane", "strict_reads"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{flag} must be a bool, got {getattr(self, flag)!r}")
        setattr_(self, "max_value_bytes", parse_size(self.max_value_bytes, what="max_value_bytes"))
        if self.backplane_url is not None and not isinstance(self.backplane_url, str):
            raise ConfigError(f"backplane_url must be a Redis URL, got {self.backplane_url!r}")
        self.backplane_spec()  # a bad backplane URL fails here, at the call site

    def _set_location(self, parts: urllib.parse.SplitResult, scheme: str) -> None:  # noqa: C901 - one check each
        """Hosts (or socket path), Sentinel service and database from the URL; options in it are refused."""
        setattr_ = object.__setattr__
        path = urllib.parse.unquote(parts.path)
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        options = sorted(set(query) - {"db"})
        if options:  # RedisTier.from_url and sc.open read them; silently ignoring them here would surprise
            raise ConfigError(
                f"RedisTier({redact_url(self.url)}): options in the URL's query string ({', '.join(options)}) are "
                "read by RedisTier.from_url(url) and sc.open(url); pass them as arguments here"
            )
        db = query.get("db", ["0"])[0]
        if scheme == "unix":
            if not path:
                raise ConfigError("unix:// needs a socket path: unix:///run/redis/redis.sock?db=0")
            setattr_(self, "socket_path", path)
        else:
            setattr_(self, "hosts", _hostports(parts.netloc, scheme))
            segments = [s for s in path.split("/") if s]
            if self.kind == "sentinel":
                if not segments:
                    raise ConfigError(f"{scheme}:// needs a service name: {scheme}://h1:26379/mymaster/0")
                setattr_(self, "service", segments.pop(0))
            if len(segments) > 1:
                raise ConfigError(f"unexpected path {path!r} in Redis URL (expected /<db>)")
            if segments and "db" in query:
                raise ConfigError(f"the database is given twice in {redact_url(self.url)}: use /<db> or ?db=")
            db = segments[0] if segments else db
        if not db.isdigit() or int(db) > 15:
            raise ConfigError(f"Redis database must be an integer in [0, 15], got {db!r}")
        if self.kind == "cluster" and int(db) != 0:
            raise ConfigError("Redis Cluster has only database 0")
        if scheme != "unix" and self.kind != "cluster" and len(self.hosts) > 1 and self.kind != "sentinel":
            raise ConfigError("several hosts are only allowed with redis+sentinel:// or redis+cluster://")
        setattr_(self, "db", int(db))

    def _check_sentinel_options(self) -> None:
        """Type-check the ``sentinel_*`` options, take the password from the environment, refuse them off Sentinel."""
        setattr_ = object.__setattr__
        sentinel = self.kind == "sentinel" or _is_sentinel_url(self.backplane_url)
        if sentinel and self.sentinel_password is None and os.environ.get("STRATACACHE_REDIS_SENTINEL_PASSWORD"):
            setattr_(self, "sentinel_password", os.environ["STRATACACHE_REDIS_SENTINEL_PASSWORD"])
            username = self.sentinel_username or os.environ.get("STRATACACHE_REDIS_SENTINEL_USERNAME") or None
            setattr_(self, "sentinel_username", username)
        for name in ("sentinel_username", "sentinel_password"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                shown = "***" if name == "sentinel_password" else repr(value)
                raise ConfigError(f"{name} must be a non-empty str or None, got {shown}")
        if self.sentinel_tls is not None and not isinstance(self.sentinel_tls, bool):
            raise ConfigError(f"sentinel_tls must be a bool or None, got {self.sentinel_tls!r}")
        given = [n for n in ("sentinel_username", "sentinel_password", "sentinel_tls") if getattr(self, n) is not None]
        if given and not sentinel:
            raise ConfigError(f"{', '.join(given)}: only for redis+sentinel:// and rediss+sentinel:// URLs")

    def backplane_spec(self) -> RedisTier:
        """The spec the backplane subscribes with: this one, or ``backplane_url`` with this spec's options."""
        if self.backplane_url is None:
            return self
        own = RedisTier.from_url(self.backplane_url)  # the URL's own options win over this spec's
        given = set(parse_tier_url(self.backplane_url).params) - {"db"}
        skip = {"url", "backplane_url", *given}
        if not _is_sentinel_url(self.backplane_url):
            skip |= {"sentinel_username", "sentinel_password", "sentinel_tls"}
        options = {f.name: getattr(self, f.name) for f in fields(self) if f.init and f.name not in skip}
        options |= {name: getattr(own, name) for name in given}
        return RedisTier(own.url, **options)

    @property
    def tls(self) -> bool:
        """Whether connections use TLS (``rediss://``, ``rediss+sentinel://``, ``rediss+cluster://``)."""
        return self.url.strip().lower().startswith("rediss")

    def __repr__(self) -> str:
        """The spec with any password in its URLs, and ``sentinel_password``, masked."""
        shown = [f"url={redact_url(self.url)}"]
        for name, f in self.__dataclass_fields__.items():
            value = getattr(self, name)
            if name == "url" or not f.init or value == f.default:
                continue
            if name == "backplane_url":
                shown.append(f"{name}={redact_url(value)}")
            elif name == "sentinel_password":
                shown.append(f"{name}='***'")
            else:
                shown.append(f"{name}={value!r}")
        return f"RedisTier({', '.join(shown)})"

    @classmethod
    def from_url(cls, url: TierURL | str) -> RedisTier:
        """Build from a URL whose query string may set any option, e.g. ``redis://h:6379/0?timeout=0.05``."""
        parsed = parse_tier_url(url) if isinstance(url, str) else url
        kwargs: dict[str, Any] = {}
        allowed = {*_FLOATS, *_INTS, "prefix", "backplane", "strict_reads", "max_value_bytes", "db"}
        allowed |= {"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "backplane_url"}
        allowed |= {"sentinel_username", "sentinel_password", "sentinel_tls"}
        for key, value in parsed.params.items():
            if key not in allowed:
                raise ConfigError(
                    f"unknown parameter {key!r} for {parsed.scheme}:// (allowed: {', '.join(sorted(allowed))})"
                )
            if key in {"backplane", "strict_reads", "sentinel_tls"}:
                kwargs[key] = parse_bool(value, what=key)
            elif key != "db":
                kwargs[key] = value
        netloc = f"//{parsed.netloc}" if parsed.netloc or parsed.scheme != "unix" else "//"
        query = f"?db={parsed.params['db']}" if "db" in parsed.params else ""
        base = f"{parsed.scheme}:{netloc}{urllib.parse.quote(parsed.path)}{query}"
        return cls(base, **kwargs)

    def connection_kwargs(self, *, asynchronous: bool = False) -> dict[str, Any]:
        """Keyword arguments of a redis-py connection to this tier (auth, TLS, timeouts), pool options aside.

        The async tier bounds each whole call with one deadline instead (``_primitives.awithin``): no socket
        timeout, which would arm a timer around every read and write.
        """
        kw: dict[str, Any] = {
            "socket_timeout": None if asynchronous else self.timeout,
            "socket_connect_timeout": self.connect_timeout,
            "username": self.username,
            "password": self.password,
            "client_name": "stratacache",
        }
        if self.tls:
            kw.update(self._ssl_kwargs())
        return kw

    def sentinel_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of redis-py's connections to the Sentinels (``Sentinel(sentinel_kwargs=...)``).

        The tier's timeouts, ``sentinel_username``/``sentinel_password`` and, when :attr:`sentinel_tls` (by default
        with ``rediss+sentinel://``), TLS with the ``ssl_*`` options; never the master's credentials.
        """
        kw: dict[str, Any] = {"socket_timeout": self.timeout, "socket_connect_timeout": self.connect_timeout}
        if self.sentinel_username is not None:
            kw["username"] = self.sentinel_username
        if self.sentinel_password is not None:
            kw["password"] = self.sentinel_password
        if self.tls if self.sentinel_tls is None else self.sentinel_tls:
            kw.update(self._ssl_kwargs())
        return kw

    def _ssl_kwargs(self) -> dict[str, Any]:
        return {
            "ssl": True,
            "ssl_ca_certs": self.ssl_ca_certs,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
            "ssl_cert_reqs": self.ssl_cert_reqs,
            "ssl_check_hostname": self.ssl_cert_reqs == "required",
        }

    def build(self, *, now: Callable[[], float]) -> Store:
        """Open the synchronous store (see :meth:`build_for`)."""
        from stratacache.core.clock import SYSTEM_CLOCK

        return self._open(now, SYSTEM_CLOCK.monotonic, asynchronous=False)  # type: ignore[return-value]

    def build_for(self, clock: Clock, *, asynchronous: bool) -> Store | AsyncStore:
        """Open the store for a sync or an async cache, timing the breaker with the cache's clock.

        Raises:
            ConfigError: the ``redis`` extra is not installed.
            TierError: the backplane could not be set up (the data path itself connects lazily).
        """
        return self._open(clock.now, clock.monotonic, asynchronous=asynchronous)

    def _open(
        self, now: Callable[[], float], monotonic: Callable[[], float], *, asynchronous: bool
    ) -> Store | AsyncStore:
        if importlib.util.find_spec("redis") is None:
            raise ConfigError("RedisTier needs the redis extra: pip install 'stratacache[redis]'") from None
        if asynchronous:
            from stratacache.tiers.redis import AsyncRedisStore

            return AsyncRedisStore(self, now=now, monotonic=monotonic)
        from stratacache._sync.redis import RedisStore

        return RedisStore(self, now=now, monotonic=monotonic)
