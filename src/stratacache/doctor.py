"""``stratacache doctor``: check a deployment's tiers and explain every finding with its fix.

Two halves. The ``evaluate_*`` functions are pure: they take measured facts (a policy name, a mode, a list of
round trips) and return a :class:`Finding`, so each rule is unit-tested exhaustively. The I/O side gathers those
facts: for Redis through :func:`stratacache.tiers.redis_admin.diagnose` (the only module here that speaks to
redis-py), for SQLite with ``os.stat`` and a read-only ``sqlite3`` connection that never creates or changes a file.
:func:`run_doctor` puts them together; ``stratacache.cli.doctor`` renders the report. See ``docs/doctor.md``.

Check ids (stable: runbooks refer to them): ``redis.reachable``, ``redis.version``, ``redis.maxmemory_policy``,
``redis.persistence``, ``redis.topology``, ``tier.latency``, ``sqlite.permissions``, ``sqlite.wal``,
``codec.pickle_secret``, ``clock.skew``.
"""

from __future__ import annotations

import contextlib
import grp
import importlib.util
import os
import pwd
import re
import secrets
import sqlite3
import stat
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from stratacache._api import _URL_SPLIT, _spec_from_url
from stratacache.codecs.base import SIGNING_KEY_ENV
from stratacache.errors import ConfigError
from stratacache.tiers.redis_spec import RedisTier
from stratacache.tiers.specs import MemoryTier, SQLiteTier

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from stratacache.tiers.redis_admin import RedisDiagnostics, SentinelFacts
    from stratacache.tiers.specs import TierSpec

__all__ = [
    "CHECK_IDS",
    "Finding",
    "PathFacts",
    "Report",
    "Severity",
    "evaluate_clock_skew",
    "evaluate_codec",
    "evaluate_latency",
    "evaluate_maxmemory_policy",
    "evaluate_permissions",
    "evaluate_persistence",
    "evaluate_reachable",
    "evaluate_topology",
    "evaluate_version",
    "evaluate_wal",
    "parse_urls",
    "run_doctor",
]

Severity = Literal["ok", "info", "warning", "error"]
SEVERITIES: Final[tuple[Severity, ...]] = ("ok", "info", "warning", "error")
_RANK: Final = {s: i for i, s in enumerate(SEVERITIES)}

CHECK_IDS: Final = (
    "redis.reachable",
    "redis.version",
    "redis.maxmemory_policy",
    "redis.persistence",
    "redis.topology",
    "tier.latency",
    "sqlite.permissions",
    "sqlite.wal",
    "codec.pickle_secret",
    "clock.skew",
)

CODEC_ENV: Final = "STRATACACHE_CODEC"
"""The codec ``doctor`` checks when ``--codec`` is not given (stratacache itself takes ``codec=`` in code)."""

REDIS_LAN_P50: Final = 0.002
"""Seconds: a median PING above this is slow for a server on the same LAN."""
SQLITE_READ_P50: Final = 0.002
"""Seconds: a median read of a missing key above this is slow for a local file."""
SKEW_WARNING: Final = 0.05
SKEW_ERROR: Final = 1.0
PICKLE_KEY_MIN: Final = 16
"""Bytes: the shortest key :class:`~stratacache.SignedPickleCodec` accepts."""
PICKLE_KEY_GOOD: Final = 32
"""Bytes: what an HMAC-SHA256 key should have (its block of randomness)."""
NETWORK_FILESYSTEMS: Final = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "afs",
        "davfs",
        "fuse.sshfs",
        "fuse.glusterfs",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "fuse.rclone",
        "fuse.juicefs",
        "fuse.cephfs",
    }
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One verdict of ``doctor``.

    Attributes:
        id: the check (one of :data:`CHECK_IDS`).
        severity: ``ok``, ``info``, ``warning`` or ``error``.
        title: one line.
        detail: what was measured.
        fix: what to do (empty when nothing is to be done).
        tier: the tier the finding is about (its URL, password masked), ``None`` for cache-wide checks.
    """

    id: str
    severity: Severity
    title: str
    detail: str
    fix: str = ""
    tier: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The finding as a JSON-ready dict."""
        return {
            "id": self.id,
            "severity": self.severity,
            "title": self.title,
            "detail": self.detail,
            "fix": self.fix,
            "tier": self.tier,
        }

    def about(self, tier: str) -> Finding:
        """This finding, for ``tier``."""
        return Finding(self.id, self.severity, self.title, self.detail, self.fix, tier)


@dataclass(frozen=True, slots=True)
class Report:
    """All findings of one run, and the tiers that could not be reached at all."""

    findings: tuple[Finding, ...]
    unreachable: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No finding of severity ``error``."""
        return all(f.severity != "error" for f in self.findings)

    @property
    def worst(self) -> Severity:
        """The highest severity among the findings (``ok`` for none)."""
        return max((f.severity for f in self.findings), key=_RANK.__getitem__, default="ok")

    def to_dict(self) -> dict[str, Any]:
        """``{"findings": [...], "ok": bool}`` (what ``--json`` prints)."""
        return {"findings": [f.to_dict() for f in self.findings], "ok": self.ok}


def _worst(*severities: Severity) -> Severity:
    return max(severities, key=_RANK.__getitem__, default="ok")


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.3f} ms" if ms < 1 else f"{ms:.1f} ms" if ms < 100 else f"{ms:,.0f} ms"


def _percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# --------------------------------------------------------------------------------------------------- Redis rules


def evaluate_reachable(
    error: str | None, *, address: str, connect_seconds: float = 0.0, timeout: float, connect_timeout: float
) -> Finding:
    """``redis.reachable``: whether a server answered ``PING`` within the tier's own timeouts."""
    budget = f"connect_timeout {connect_timeout:g} s, timeout {timeout:g} s"
    if error is None:
        return Finding(
            "redis.reachable",
            "ok",
            "Redis answers",
            f"{address} answered PING; connecting and the first PING took {_ms(connect_seconds)} ({budget})",
        )
    lowered = error.lower()
    if any(s in lowered for s in ("authentication", "noauth", "wrongpass", "invalid password", "invalid username")):
        fix = (
            "check the user name and password (in the URL, or $STRATACACHE_REDIS_USERNAME and "
            "$STRATACACHE_REDIS_PASSWORD) against the server's requirepass or ACL user"
        )
    elif "noperm" in lowered or "authorization" in lowered:
        fix = "the ACL user may not run PING or CLIENT SETNAME: grant the commands listed in docs/redis.md (ACL)"
    elif "certificate" in lowered or "ssl" in lowered or "tls" in lowered:
        fix = "check the TLS options: ssl_ca_certs must hold the CA of the server's certificate (docs/redis.md, TLS)"
    elif "masternotfound" in lowered or "no master" in lowered:
        fix = "no Sentinel named a master for this service: check the service name and the Sentinels (below)"
    else:
        fix = (
            "check that the server runs and that host, port and firewall let this host in; on a slow link raise "
            "?connect_timeout= and ?timeout= in the URL (stratacache uses the same budgets)"
        )
    return Finding(
        "redis.reachable", "error", "Redis unreachable", f"no PING answered by {address} ({budget}): {error}", fix
    )


def _version_tuple(text: str) -> tuple[int, ...] | None:
    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    return None if match is None else tuple(int(g) for g in match.groups(default="0"))


def evaluate_version(info: Mapping[str, Any], info_error: str | None = None) -> Finding:
    """``redis.version``: Redis >= 7.0 or Valkey >= 7.2 (``INFO server``)."""
    redis_version = str(info.get("redis_version") or "")
    valkey_version = str(info.get("valkey_version") or "")
    if not redis_version and not valkey_version:
        why = f" ({info_error})" if info_error else ""
        return Finding(
            "redis.version",
            "info",
            "Server version could not be read",
            f"INFO server did not answer{why}",
            "grant +info to stratacache's ACL user to let doctor check the version (Redis >= 7.0, Valkey >= 7.2)",
        )
    for fork in ("dragonfly_version", "keydb_version"):
        if info.get(fork):
            name = fork.partition("_")[0].capitalize()
            return Finding(
                "redis.version",
                "warning",
                f"{name} is not a tested server",
                f"{name} {info[fork]} (reports redis_version {redis_version})",
                "stratacache is tested against Redis >= 7.0 and Valkey >= 7.2 (Lua scripts, pub/sub, TIME)",
            )
    valkey = bool(valkey_version) or str(info.get("server_name") or "").lower() == "valkey"
    name, shown, minimum = (
        ("Valkey", valkey_version or redis_version, (7, 2)) if valkey else ("Redis", redis_version, (7, 0))
    )
    version = _version_tuple(shown)
    wanted = ".".join(map(str, minimum))
    if version is None:
        return Finding(
            "redis.version",
            "warning",
            f"{name} version not understood",
            f"{name} reports version {shown!r}",
            f"stratacache needs {name} >= {wanted}",
        )
    if version[:2] < minimum:
        return Finding(
            "redis.version",
            "error",
            f"{name} {shown} is too old",
            f"{name} {shown}; stratacache needs {name} >= {wanted}",
            f"upgrade the server to {name} >= {wanted} (Redis 7.0+ or Valkey 7.2+)",
        )
    return Finding("redis.version", "ok", f"{name} {shown}", f"{name} {shown} (supported: >= {wanted})")


_POLICY_FIX: Final = (
    "CONFIG SET maxmemory-policy volatile-lfu (or volatile-lru), and the same in redis.conf so it survives a restart"
)


def evaluate_maxmemory_policy(policy: str | None, maxmemory: int | None, used_memory: int | None = None) -> Finding:  # noqa: C901 - one branch per policy family
    """``redis.maxmemory_policy``: what the server evicts when full, and whether it has a bound at all.

    stratacache gives every entry and lease a TTL, but the counter hash ``P{g}gens`` and the bump sequence
    ``P{g}seq`` have none. ``volatile-lru``/``volatile-lfu`` (what docs/redis.md recommends) evict only keys with
    a TTL; ``allkeys-*`` may evict the counters, which stratacache survives by design but coarsely (every entry of
    every namespace becomes a miss); ``noeviction`` refuses writes once full.
    """
    name = (policy or "").strip().lower()
    used = f", used_memory {used_memory:,} bytes" if used_memory is not None else ""
    bound = f"maxmemory {maxmemory:,} bytes" if maxmemory else "maxmemory 0 (no limit)"
    detail = f"maxmemory-policy {name or '?'}, {bound}{used}"
    issues: list[tuple[Severity, str, str]] = []
    if not name:
        issues.append(("info", "could not be read", "grant +info (or +config|get) to let doctor read it"))
    elif name in {"volatile-lru", "volatile-lfu"}:
        issues.append(("ok", "evicts only keys with a TTL, never the counters: recommended", ""))
    elif name == "volatile-random":
        issues.append(
            (
                "info",
                "evicts only keys with a TTL (never the counters), but at random, hot entries as readily as cold ones",
                "volatile-lfu or volatile-lru keep the hot entries: " + _POLICY_FIX,
            )
        )
    elif name == "volatile-ttl":
        issues.append(
            (
                "info",
                (
                    "evicts only keys with a TTL (never the counters), shortest remaining TTL first: in-flight fill "
                    "leases (P{k}f, lease_ttl) go first, so those loads are served but not stored, and with lease_wait "
                    "a second process may load the same key"
                ),
                _POLICY_FIX,
            )
        )
    elif name.startswith("volatile-"):
        issues.append(("info", "a volatile-* policy evicts only keys with a TTL (never the counters)", ""))
    elif name.startswith("allkeys-"):
        issues.append(
            (
                "warning",
                (
                    "may evict the generation counters P{g}gens (and the bump sequence P{g}seq), which have no TTL: "
                    "they are born again with a later epoch, so nothing stale is served, but every entry of every "
                    "namespace becomes a miss at once (a burst of loads); docs/redis.md recommends volatile-*"
                ),
                _POLICY_FIX,
            )
        )
    elif name == "noeviction":
        severity: Severity = "warning"
        text = (
            "evicts nothing: once used_memory reaches maxmemory, writes are refused with OOM: set() and "
            "invalidate_tags()/clear() raise TierError, fills fail (counted in errors; the loaded value is still "
            "served); reads and deletes still work"
        )
        if maxmemory and used_memory is not None and used_memory >= 0.9 * maxmemory:
            severity = "error"
            text += f"; the server is at {used_memory / maxmemory:.0%} of maxmemory now"
        if maxmemory:
            issues.append((severity, text, _POLICY_FIX))
    else:
        issues.append(("warning", f"unknown policy {name!r}", _POLICY_FIX))
    if maxmemory == 0:
        issues.append(
            (
                "warning",
                (
                    "no memory bound: the cache grows with its working set until the host runs out of memory (and the "
                    "policy never applies)"
                ),
                (
                    "on a server dedicated to the cache, CONFIG SET maxmemory to ~75% of the memory it may use "
                    "(e.g. 4gb) with maxmemory-policy volatile-lfu; on a shared server, leave it if another "
                    "workload sizes it"
                ),
            )
        )
    severity = _worst(*(s for s, _, _ in issues))
    titles = {
        "ok": "Eviction policy never evicts the counters",
        "info": "Eviction policy: see detail",
        "warning": "Eviction policy or memory bound needs attention",
        "error": "Redis is about to refuse writes",
    }
    return Finding(
        "redis.maxmemory_policy",
        severity,
        titles[severity],
        f"{detail}: " + "; ".join(text for _, text, _ in issues),
        "; ".join(dict.fromkeys(fix for _, _, fix in issues if fix)),
    )


def evaluate_persistence(
    *,
    save: str | None,
    appendonly: str | None,
    appendfsync: str | None = None,
    aof_enabled: int | None = None,
    config_error: str | None = None,
) -> Finding:
    """``redis.persistence``: whether a restart keeps entries and counters, and how old they may be.

    Off is what docs/redis.md recommends for a cache: a restart empties entries and counters together. With
    persistence, a restart reloads both from the last save and loses the invalidations made after it, so entries
    invalidated meanwhile are current again: minutes with RDB, about a second with AOF ``everysec``.
    """
    aof = (
        appendonly.strip().lower() == "yes"
        if appendonly is not None
        else (aof_enabled == 1 if aof_enabled is not None else None)
    )
    if save is None:
        known = "AOF on" if aof else "AOF off" if aof is False else "AOF unknown"
        return Finding(
            "redis.persistence",
            "info",
            "Persistence settings could not be read",
            f"CONFIG GET refused ({config_error or 'no reply'}); from INFO persistence: {known}",
            "check by hand: `save` should be empty and `appendonly no` for a cache (docs/redis.md, Persistence); "
            "grant +config|get to let doctor read them",
        )
    rdb = bool(save.strip())
    fsync = (appendfsync or "").strip().lower()
    settings = f"save {save.strip()!r}, appendonly {'yes' if aof else 'no'}" + (f", appendfsync {fsync}" if aof else "")
    if not aof and not rdb:
        return Finding(
            "redis.persistence",
            "ok",
            "Persistence off (right for a cache)",
            f"{settings}: a restart empties the entries and the counters together",
        )
    if aof and fsync == "always":
        return Finding(
            "redis.persistence",
            "info",
            "AOF persistence (appendfsync always)",
            f"{settings}: a restart keeps the entries and the counters, invalidations included",
            'nothing to do if persistence is wanted; off (save "", appendonly no) is simpler for a pure cache',
        )
    window = (
        "about a second"
        if aof and fsync == "everysec"
        else "tens of seconds"
        if aof
        else "the time since the last snapshot (minutes)"
    )
    return Finding(
        "redis.persistence",
        "warning",
        "A restart may bring invalidated entries back",
        f"{settings}: a restart reloads the entries and counters of the last save; invalidations made in "
        f"{window} before it are lost, and the entries they invalidated are current again",
        'for a cache turn persistence off (CONFIG SET save "" and appendonly no); if the server must persist, '
        "use appendonly yes with appendfsync always and short TTLs (docs/redis.md, Persistence)",
    )


def _topology_standalone(kind: str, info: Mapping[str, Any], address: str) -> Finding:
    role = str(info.get("role") or "")
    cluster_node = str(info.get("cluster_enabled", "0")) == "1"
    if cluster_node:
        return Finding(
            "redis.topology",
            "error",
            "A Cluster node reached without cluster mode",
            f"{address} has cluster_enabled:1 but the URL is {kind}://: keys in other nodes' slots answer MOVED",
            "use redis+cluster://host1:port,host2:port,... (docs/redis.md, Cluster)",
        )
    if role in {"slave", "replica"}:
        master = f"{info.get('master_host', '?')}:{info.get('master_port', '?')}"
        return Finding(
            "redis.topology",
            "error",
            "Connected to a replica",
            f"{address} is a replica of {master} (link {info.get('master_link_status', '?')}): every write, fill "
            "and invalidation is refused (READONLY), so they are journaled and nothing is ever cached",
            "point the URL at the master, or use redis+sentinel://sentinels/service/0 to follow failovers",
        )
    if role != "master":
        return Finding(
            "redis.topology",
            "info",
            "Role could not be read",
            f"INFO replication did not answer for {address}",
            "grant +info to let doctor check the role",
        )
    replicas = int(info.get("connected_slaves", 0) or 0)
    return Finding(
        "redis.topology",
        "ok",
        "Standalone master" if kind != "unix" else "Standalone master (Unix socket)",
        f"{address} is a master with {replicas} connected replica(s)",
    )


def _topology_sentinel(sentinels: Sequence[SentinelFacts], info: Mapping[str, Any], address: str) -> Finding:
    answered = [s for s in sentinels if s.error is None]
    listed = len(sentinels)
    issues: list[tuple[Severity, str, str]] = []
    parts = [f"{len(answered)} of {listed} listed Sentinels answered"]
    if not answered:
        errors = "; ".join(f"{s.address}: {s.error}" for s in sentinels)
        return Finding(
            "redis.topology",
            "error",
            "No Sentinel answered",
            f"0 of {listed} listed Sentinels answered: {errors}",
            "check the Sentinel addresses, the service name and sentinel_password/sentinel_tls (docs/redis.md)",
        )
    if len(answered) < listed:
        down = ", ".join(f"{s.address} ({s.error})" for s in sentinels if s.error is not None)
        issues.append(("warning", f"not answering: {down}", "restart or remove the Sentinels that do not answer"))
    masters = {s.master for s in answered}
    quorum = max((s.quorum or 0) for s in answered)
    known = max((s.other_sentinels or 0) for s in answered) + 1
    replicas = max((s.replicas or 0) for s in answered)
    parts.append(f"master {', '.join(sorted(m or '?' for m in masters))}, quorum {quorum}, {known} Sentinels known")
    parts.append(f"{replicas} replica(s)")
    if len(masters) > 1:
        issues.append(
            ("error", "the Sentinels disagree on the master (a failover in progress, or split)", "wait and re-run")
        )
    down_flags = {f for s in answered for f in s.flags if f in {"s_down", "o_down", "disconnected"}}
    if down_flags:
        issues.append(("error", f"the master is flagged {', '.join(sorted(down_flags))}", "check the master"))
    failed = [s for s in answered if s.ckquorum is not None and not s.ckquorum.upper().startswith("OK")]
    if failed:
        issues.append(
            (
                "error",
                f"SENTINEL CKQUORUM fails ({failed[0].ckquorum}): a failure of the master would not be failed over",
                "run enough Sentinels that a majority and the quorum can be reached (3 or more, on separate hosts)",
            )
        )
    if known < 3:
        issues.append(("warning", f"only {known} Sentinel(s) know the master", "run at least 3 Sentinels"))
    if replicas == 0:
        issues.append(("warning", "no replica: a failover has nothing to promote", "add a replica"))
    role = str(info.get("role") or "")
    if role in {"slave", "replica"}:
        issues.append(("error", f"the server reached ({address}) is a replica: writes fail", "re-run; check Sentinel"))
    severity = _worst("ok", *(s for s, _, _ in issues))
    return Finding(
        "redis.topology",
        severity,
        "Sentinel: master known, failover possible" if severity == "ok" else "Sentinel topology needs attention",
        "; ".join(parts + [text for _, text, _ in issues]),
        "; ".join(dict.fromkeys(fix for _, _, fix in issues if fix)),
    )


def _topology_cluster(
    cluster_info: Mapping[str, str], nodes: Sequence[tuple[str, tuple[str, ...], int]], cluster_error: str | None
) -> Finding:
    if cluster_error is not None:
        return Finding(
            "redis.topology",
            "error",
            "Not a working Cluster",
            f"CLUSTER INFO failed: {cluster_error}",
            "redis+cluster:// needs cluster-enabled nodes; for a single server use redis://host:port/db",
        )
    state = cluster_info.get("cluster_state", "?")
    assigned = int(cluster_info.get("cluster_slots_assigned", "0") or 0)
    slots_ok = int(cluster_info.get("cluster_slots_ok", "0") or 0)
    pfail = int(cluster_info.get("cluster_slots_pfail", "0") or 0)
    failing = int(cluster_info.get("cluster_slots_fail", "0") or 0)
    masters = [n for n in nodes if "master" in n[1]]
    serving = [n for n in masters if n[2] > 0]
    replicas = [n for n in nodes if "slave" in n[1] or "replica" in n[1]]
    bad = sorted(n[0] for n in nodes if {"fail", "fail?", "handshake", "noaddr"} & set(n[1]))
    detail = (
        f"cluster_state {state}, {assigned} of 16384 slots assigned ({slots_ok} ok, {pfail} pfail, {failing} fail), "
        f"{len(nodes)} nodes: {len(serving)} masters serving slots, {len(replicas)} replicas"
    )
    if bad:
        detail += f"; failing nodes: {', '.join(bad)}"
    if state != "ok" or assigned < 16384 or failing:
        return Finding(
            "redis.topology",
            "error",
            "Cluster is down or incomplete",
            detail,
            "cover all 16384 slots with reachable masters (redis-cli --cluster check / fix host:port)",
        )
    if pfail or bad:
        return Finding(
            "redis.topology",
            "warning",
            "Cluster nodes are failing",
            detail,
            "check the failing nodes before the cluster marks their slots as failed",
        )
    if not replicas:
        return Finding(
            "redis.topology",
            "info",
            "Cluster without replicas",
            detail,
            "a master's failure takes its slots down until it returns: add one replica per master for failover",
        )
    return Finding("redis.topology", "ok", "Cluster healthy", detail)


def evaluate_topology(
    kind: str,
    info: Mapping[str, Any],
    *,
    address: str = "",
    sentinels: Sequence[SentinelFacts] = (),
    cluster_info: Mapping[str, str] | None = None,
    cluster_nodes: Sequence[tuple[str, tuple[str, ...], int]] = (),
    cluster_error: str | None = None,
    backplane_error: str | None = None,
) -> Finding:
    """``redis.topology``: standalone master, replica, Sentinel or Cluster, judged by the URL's kind.

    ``backplane_error``: why subscribing to the backplane channel failed (a proxy that cannot carry pub/sub, an ACL
    without the channel): the L1 above the tier is then flushed before every operation.
    """
    if kind == "sentinel":
        found = _topology_sentinel(sentinels, info, address)
    elif kind == "cluster":
        found = _topology_cluster(cluster_info or {}, cluster_nodes, cluster_error)
    else:
        found = _topology_standalone(kind, info, address)
    if backplane_error is None:
        return found
    return Finding(
        "redis.topology",
        "error",
        "The backplane cannot subscribe",
        f"{found.detail}; SUBSCRIBE to the backplane channel failed ({backplane_error}): every process flushes its "
        "L1 before every operation, so the L1 serves nothing",
        "; ".join(
            x
            for x in (
                found.fix,
                (
                    "subscribe through an endpoint that carries pub/sub (backplane_url=redis://primary:6379/0 behind a "
                    "proxy); let the ACL user +subscribe on &<prefix>bp; or backplane=False for processes without an L1"
                ),
            )
            if x
        ),
    )


def evaluate_clock_skew(skew: float | None, rtt: float = 0.0, *, error: str | None = None) -> Finding:
    """``clock.skew``: the server's ``TIME`` against this host's wall clock, at the middle of the round trip.

    The verdict uses the lower bound ``|skew| - rtt/2``: half the round trip is the measurement's uncertainty.
    """
    if skew is None:
        return Finding(
            "clock.skew",
            "info",
            "Clock skew not measured",
            f"TIME did not answer ({error or 'no sample'})",
            "grant +time to stratacache's ACL user (the bump script needs it anyway)",
        )
    bound = max(0.0, abs(skew) - rtt / 2)
    ahead = "ahead of" if skew >= 0 else "behind"
    detail = f"server clock {_ms(abs(skew))} {ahead} this host (± {_ms(rtt / 2)}, half the round trip)"
    why = (
        "invalidation-lag metrics compare a publisher's clock with a receiver's, and TTLs, the outage distrust "
        "window and the counters' epochs (server TIME) assume hosts agree"
    )
    fix = "run NTP or chrony on this host and on the server (chronyc tracking / timedatectl show-timesync)"
    if bound > SKEW_ERROR:
        return Finding("clock.skew", "error", "Clocks disagree by more than a second", f"{detail}; {why}", fix)
    if bound > SKEW_WARNING:
        return Finding(
            "clock.skew", "warning", f"Clocks disagree by more than {SKEW_WARNING * 1000:g} ms", f"{detail}; {why}", fix
        )
    return Finding("clock.skew", "ok", "Clocks agree", detail)


def evaluate_latency(
    samples: Sequence[float], *, tier: Literal["redis", "sqlite"], timeout: float | None = None
) -> Finding:
    """``tier.latency``: p50/p99 of round trips (Redis ``PING``; SQLite a read of a missing key)."""
    what = "PING" if tier == "redis" else "read of a missing key"
    if not samples:
        return Finding("tier.latency", "info", "Latency not measured", f"no {what} completed", "")
    p50, p99 = _percentile(samples, 0.5), _percentile(samples, 0.99)
    detail = f"{len(samples)} x {what}: p50 {_ms(p50)}, p99 {_ms(p99)}"
    if tier == "redis":
        assert timeout is not None
        detail += f" (the tier's timeout: {_ms(timeout)})"
        if p50 >= timeout:
            return Finding(
                "tier.latency",
                "error",
                "Round trips exceed the tier's timeout",
                detail + ": most calls would time out and open the breaker",
                "move the cache next to the application, or raise ?timeout= in the URL",
            )
        if p50 > REDIS_LAN_P50 or p99 > timeout / 2:
            return Finding(
                "tier.latency",
                "warning",
                "Redis is slow for a LAN",
                detail + f": a LAN round trip is well under {_ms(REDIS_LAN_P50)}, and p99 should stay far below "
                "the timeout",
                "check the network path (cross-zone or cross-region hops, a proxy) and the server's load "
                "(redis-cli --latency, SLOWLOG GET); raise ?timeout= if the distance is intended",
            )
        return Finding("tier.latency", "ok", "Redis round trips are fast", detail)
    if p50 > SQLITE_READ_P50:
        return Finding(
            "tier.latency",
            "warning",
            "SQLite reads are slow",
            detail + f": a local file answers in microseconds (warning above {_ms(SQLITE_READ_P50)})",
            "put the file on a local disk (not a network filesystem) with free page cache",
        )
    return Finding("tier.latency", "ok", "SQLite reads are fast", detail)


# -------------------------------------------------------------------------------------------------- SQLite rules


@dataclass(frozen=True, slots=True)
class PathFacts:
    """What ``os.stat`` says about a path (``exists=False``: nothing else is meaningful)."""

    path: str
    exists: bool
    mode: int = 0
    """Permission bits, with the sticky bit (``stat.S_IMODE``)."""
    uid: int = -1
    gid: int = -1
    owner: str = ""
    group: str = ""
    writable: bool = False
    """Writable by the user running doctor."""

    def describe(self) -> str:
        """``path: owner alice, group staff, mode 0644`` (or ``path: absent``)."""
        if not self.exists:
            return f"{self.path}: absent"
        return f"{self.path}: owner {self.owner or self.uid}, group {self.group or self.gid}, mode {self.mode:04o}"


def _mode_issues(facts: PathFacts, *, directory: bool) -> list[tuple[Severity, str, str]]:
    out: list[tuple[Severity, str, str]] = []
    if not facts.exists:
        return out
    sticky = bool(facts.mode & stat.S_ISVTX)
    chmod = "chmod 700" if directory else "chmod 600"
    if facts.mode & stat.S_IWOTH:
        if directory and sticky:
            out.append(
                (
                    "warning",
                    (
                        f"{facts.path} is a shared sticky directory (like /tmp): another user can create the database "
                        "or its -wal/-shm files before the cache does, and fill them with entries"
                    ),
                    "keep the cache in a private directory (e.g. /var/cache/<app>, chmod 700)",
                )
            )
        else:
            what = (
                "any local user can replace the database or its -wal/-shm"
                if directory
                else "any local user can write entries"
            )
            out.append(
                (
                    "error",
                    f"{facts.path} is world-writable: {what} (cache poisoning: your application serves them)",
                    f"{chmod} {facts.path} (owner: the application's user)",
                )
            )
    elif facts.mode & stat.S_IWGRP:
        out.append(
            (
                "warning",
                f"{facts.path} is group-writable (group {facts.group or facts.gid}): its members can write entries",
                f"{chmod} {facts.path}, unless that group is exactly the application's processes",
            )
        )
    if not directory and facts.mode & stat.S_IROTH:
        out.append(
            (
                "info",
                f"{facts.path} is world-readable: other local users can read cached values",
                f"chmod 600 {facts.path} if the values are private (or run the application with umask 077)",
            )
        )
    return out


def evaluate_permissions(  # noqa: C901, PLR0912 - one rule per path and fact
    db: PathFacts,
    directory: PathFacts,
    sidecars: Sequence[PathFacts] = (),
    *,
    uid: int,
    creatable: bool = True,
) -> Finding:
    """``sqlite.permissions``: who may write the cache file, its directory and its ``-wal``/``-shm`` files.

    Args:
        db: the database file.
        directory: its directory.
        sidecars: the ``-wal`` and ``-shm`` files (absent ones are skipped).
        uid: the user running doctor.
        creatable: when the directory does not exist, whether the first open can create it (``mkdir -p``).
    """
    issues: list[tuple[Severity, str, str]] = []
    if not directory.exists:
        if creatable:
            issues.append(("info", f"{directory.path} does not exist yet; the first open creates it", ""))
        else:
            issues.append(
                (
                    "error",
                    f"{directory.path} does not exist and cannot be created by this user",
                    f"mkdir -p {directory.path} and chown it to the application's user",
                )
            )
    else:
        issues += _mode_issues(directory, directory=True)
    if db.exists:
        issues += _mode_issues(db, directory=False)
        if not db.writable:
            issues.append(
                (
                    "warning",
                    f"{db.path} is not writable by the user running doctor (uid {uid})",
                    "run doctor as the application's user; the application must be able to write the file",
                )
            )
    elif directory.exists:
        if directory.writable:
            issues.append(("info", f"{db.path} does not exist yet; the first open creates it", ""))
        else:
            issues.append(
                (
                    "error",
                    f"{db.path} does not exist and {directory.path} is not writable by this user (uid {uid})",
                    "chown the directory to the application's user, or choose a writable path",
                )
            )
    for side in sidecars:
        if not side.exists:
            continue
        issues += _mode_issues(side, directory=False)
        if db.exists and side.uid != db.uid:
            issues.append(
                (
                    "warning",
                    (
                        f"{side.path} is owned by {side.owner or side.uid}, the database by {db.owner or db.uid}: "
                        "a process of the other user may be refused the file (SQLITE_READONLY, 'attempt to write a "
                        "readonly database')"
                    ),
                    f"chown {side.owner or side.uid}: the application's user owns the file and its -wal/-shm",
                )
            )
    described = [db.describe(), directory.describe(), *(s.describe() for s in sidecars if s.exists)]
    severity = _worst("ok", *(s for s, _, _ in issues))
    titles = {
        "ok": "Only its owner can write the cache",
        "info": "Cache file permissions: see detail",
        "warning": "Cache file permissions need attention",
        "error": "Others can write the cache, or it cannot be created",
    }
    detail = "; ".join(described)
    if issues:
        detail += ". " + "; ".join(text for _, text, _ in issues)
    return Finding(
        "sqlite.permissions",
        severity,
        titles[severity],
        detail,
        "; ".join(dict.fromkeys(fix for _, _, fix in issues if fix)),
    )


def evaluate_wal(  # noqa: C901, PLR0911 - one verdict per state of the file
    *,
    path: str,
    exists: bool,
    header: bytes | None,
    schema: int | None,
    schema_error: str | None = None,
    fstype: str | None = None,
    expected_schema: int,
) -> Finding:
    """``sqlite.wal``: the file is an SQLite database in WAL mode with a layout this stratacache reads.

    Args:
        path: the file.
        exists: whether it exists.
        header: its first 100 bytes (``None``: unreadable).
        schema: the layout version in ``sc_meta`` (``None``: none recorded).
        schema_error: why the layout could not be read.
        fstype: the filesystem type of its mount (``/proc/mounts``), ``None`` when unknown.
        expected_schema: the layout this stratacache writes (``tiers.sqlite.SCHEMA_VERSION``).
    """
    fs = f" on {fstype}" if fstype else ""
    if fstype is not None and fstype.lower() in NETWORK_FILESYSTEMS:
        return Finding(
            "sqlite.wal",
            "error",
            "WAL cannot work on a network filesystem",
            f"{path} is{fs}: WAL mode needs every process on one host, sharing the memory-mapped -shm file and "
            "working locks; over a network filesystem they are not shared (corruption or 'database is locked')",
            "put the SQLite cache on a local disk or tmpfs of each host (e.g. /var/cache/<app>/cache.db); share "
            "a cache between hosts with RedisTier",
        )
    if not exists:
        return Finding(
            "sqlite.wal",
            "info",
            "Cache file not created yet",
            f"{path} does not exist{fs}; stratacache creates it in WAL mode on first open",
        )
    if header is None:
        return Finding(
            "sqlite.wal",
            "warning",
            "Cache file could not be read",
            f"{path}{fs} could not be read by this user",
            "run doctor as the application's user",
        )
    if len(header) == 0:
        return Finding(
            "sqlite.wal",
            "info",
            "Cache file is empty",
            f"{path}{fs} is empty; stratacache lays it out (WAL) on first open",
        )
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return Finding(
            "sqlite.wal",
            "error",
            "Not an SQLite database",
            f"{path}{fs} does not start with the SQLite header: opening the tier fails (TierError)",
            "point the URL at the cache file, or delete this file if it is a leftover",
        )
    wal = header[18] == 2 and header[19] == 2
    journal = "WAL" if wal else "rollback journal"
    if schema_error is not None:
        return Finding(
            "sqlite.wal",
            "warning",
            "Layout version could not be read",
            f"{path}{fs}: journal mode {journal}; reading sc_meta failed: {schema_error}",
            "run doctor as the application's user",
        )
    if schema is not None and schema > expected_schema:
        return Finding(
            "sqlite.wal",
            "error",
            "Written by a newer stratacache",
            f"{path}: layout version {schema}, this stratacache reads {expected_schema}: opening it raises TierError",
            "upgrade stratacache everywhere the file is shared, or delete the file (it is a cache)",
        )
    if not wal:
        return Finding(
            "sqlite.wal",
            "warning",
            "Not in WAL mode",
            f"{path}{fs}: rollback journal; stratacache switches every connection to WAL, so something else "
            "(another program, or a filesystem refusing WAL) left it so",
            "let only stratacache open the file; if opening the tier fails with 'cannot put ... in WAL mode', "
            "move the file to a local filesystem",
        )
    if schema is None:
        return Finding(
            "sqlite.wal",
            "warning",
            "Not a stratacache file",
            f"{path}{fs}: WAL, but no stratacache layout (no sc_meta): another application's database?",
            "give the cache a file of its own",
        )
    if schema < expected_schema:
        return Finding(
            "sqlite.wal",
            "info",
            "Older layout: upgraded on first open",
            f"{path}{fs}: WAL, layout version {schema}; the first open upgrades it to {expected_schema}, dropping "
            "the entries and keeping the counters",
        )
    return Finding("sqlite.wal", "ok", "WAL mode, current layout", f"{path}{fs}: WAL, layout version {schema}")


# --------------------------------------------------------------------------------------------------- codec rule


def check_codec_name(codec: str) -> str:
    """The normalized codec name; :class:`ConfigError` for an unknown one (a usage error in the CLI)."""
    name = codec.strip().lower()
    base, _, extra = name.partition("+")
    if base not in {"msgpack", "json", "pickle"} or extra not in {"", "zstd"}:
        raise ConfigError(f"unknown codec {codec!r}: use msgpack, json or pickle, optionally with +zstd")
    return name


def evaluate_codec(codec: str | None, environ: Mapping[str, str]) -> list[Finding]:
    """``codec.pickle_secret``: the pickle codec needs ``$STRATACACHE_SIGNING_KEY``; msgpack is safe by default."""
    from stratacache.codecs.signed_pickle import SignedPickleCodec

    name = check_codec_name(codec) if codec is not None else "msgpack"
    safe = Finding(
        "codec.pickle_secret",
        "ok" if not name.startswith("pickle") else "info",
        "msgpack is the default and safe" if name.startswith(("msgpack", "pickle")) else f"{name} is safe",
        f"codec {name}: decoding never runs code, so nothing read from a shared tier can execute; no key needed"
        if not name.startswith("pickle")
        else "msgpack (the default) never runs code when decoding and needs no key; pickle is opt-in",
        "" if not name.startswith("pickle") else "prefer msgpack unless values need pickle (arbitrary objects)",
    )
    if not name.startswith("pickle"):
        return [safe]
    secret = environ.get(SIGNING_KEY_ENV, "")
    make_key = (
        f"export {SIGNING_KEY_ENV}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))'), the same in "
        "every process sharing the tiers"
    )
    if not secret:
        return [
            Finding(
                "codec.pickle_secret",
                "error",
                "Pickle codec without a signing key",
                f"codec {name}; ${SIGNING_KEY_ENV} is not set: the cache refuses to open (ConfigError), since "
                "unsigned pickle from a shared tier is remote code execution for whoever can write it",
                make_key + "; or use msgpack (the default)",
            ),
            safe,
        ]
    try:
        parsed = SignedPickleCodec.from_env_value(secret)
    except ConfigError as exc:
        return [
            Finding(
                "codec.pickle_secret",
                "error",
                "Pickle signing key refused",
                f"codec {name}; ${SIGNING_KEY_ENV} is set ({len(secret.encode())} bytes) but refused: {exc}",
                f"a key of at least {PICKLE_KEY_MIN} bytes, or id1:key1,id2:key2: " + make_key,
            ),
            safe,
        ]
    shortest = min(len(k) for k in parsed._keys.values())
    ids = ", ".join(parsed._keys)
    if shortest < PICKLE_KEY_GOOD:
        return [
            Finding(
                "codec.pickle_secret",
                "warning",
                "Pickle signing key is short",
                f"codec {name}; key id(s) {ids}; the shortest key has {shortest} bytes (accepted from "
                f"{PICKLE_KEY_MIN}; HMAC-SHA256 wants {PICKLE_KEY_GOOD} random bytes)",
                make_key + " (rotate: id2:new,id1:old signs with the new key and still reads the old)",
            ),
            safe,
        ]
    return [
        Finding(
            "codec.pickle_secret",
            "ok",
            "Pickle values are signed",
            f"codec {name}; key id(s) {ids}; shortest key {shortest} bytes; signs with {parsed._current!r}",
        ),
        safe,
    ]


# --------------------------------------------------------------------------------------------------------- I/O


def redact(url: str) -> str:
    """``url`` with the password of its user info and any ``*password=`` parameter replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    shown = url
    if parts.password is not None:
        userinfo, _, hosts = parts.netloc.rpartition("@")
        shown = shown.replace(f"//{parts.netloc}", f"//{userinfo.partition(':')[0]}:***@{hosts}", 1)
    if parts.query:
        query = "&".join(
            f"{k}=***" if k.lower().endswith("password") else f"{k}{sep}{v}"
            for k, sep, v in (p.partition("=") for p in parts.query.split("&"))
        )
        shown = shown.replace(f"?{parts.query}", f"?{query}", 1)
    return shown


def split_urls(values: Iterable[str]) -> list[str]:
    """Tier URLs from ``--url`` values or ``$STRATACACHE_URL``: comma- or space-separated lists allowed.

    A comma starts a new URL only where a scheme follows, so ``redis+cluster://h1:7000,h2:7001`` stays whole.
    """
    out: list[str] = []
    for value in values:
        for word in value.split():
            out.extend(part.strip() for part in _URL_SPLIT.split(word) if part.strip())
    return out


def parse_urls(urls: Sequence[str]) -> list[tuple[str, MemoryTier | TierSpec]]:
    """``(shown URL, spec)`` per URL, in order.

    Raises:
        ConfigError: a bad URL, scheme or parameter (the message never shows a password).
    """
    out: list[tuple[str, MemoryTier | TierSpec]] = []
    for url in urls:
        try:
            spec = _spec_from_url(url)
        except ConfigError as exc:
            message = str(exc)
            if url in message:
                message = message.replace(url, redact(url))
            raise ConfigError(message) from None
        out.append((redact(url), spec))
    return out


def _stat(path: Path) -> PathFacts:
    try:
        st = path.stat()
    except OSError:
        return PathFacts(str(path), exists=False)
    owner = group = ""
    with contextlib.suppress(KeyError):
        owner = pwd.getpwuid(st.st_uid).pw_name
    with contextlib.suppress(KeyError):
        group = grp.getgrgid(st.st_gid).gr_name
    return PathFacts(
        str(path),
        exists=True,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        owner=owner,
        group=group,
        writable=os.access(path, os.W_OK),
    )


def _fstype(path: Path) -> str | None:
    """The filesystem type of the mount holding ``path`` (its nearest existing ancestor), from /proc/mounts."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        real = os.path.realpath(probe)
        mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    best, fstype = "", None
    for line in mounts:
        fields_ = line.split()
        if len(fields_) < 3:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields_[1])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, fields_[2]
    return fstype


def _read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection that creates no file: ``immutable`` unless a live ``-wal``/``-shm`` pair exists.

    A plain ``mode=ro`` connection to a WAL database without its ``-wal``/``-shm`` would create them (owned by
    whoever runs doctor, possibly root) and leave them behind.
    """
    live = Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro" + ("" if live else "&immutable=1")
    return sqlite3.connect(uri, uri=True, timeout=1.0, isolation_level=None, check_same_thread=False)


def _sqlite_findings(spec: SQLiteTier, samples: int) -> list[Finding]:
    from stratacache.tiers.sqlite import SCHEMA_VERSION

    path = Path(str(spec.path))
    directory = path.parent
    ancestor = directory
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    creatable = ancestor.is_dir() and os.access(ancestor, os.W_OK | os.X_OK)
    db = _stat(path)
    sidecars = [_stat(Path(f"{path}{suffix}")) for suffix in ("-wal", "-shm")]
    findings = [evaluate_permissions(db, _stat(directory), sidecars, uid=os.getuid(), creatable=creatable)]
    fstype = _fstype(path)
    header: bytes | None = None
    schema: int | None = None
    schema_error: str | None = None
    rtts: list[float] = []
    if db.exists:
        try:
            with path.open("rb") as f:
                header = f.read(100)
        except OSError:
            header = None
    if header is not None and len(header) >= 100 and header.startswith(b"SQLite format 3\x00"):
        try:
            conn = _read_only(path)
            try:
                has_meta = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sc_meta'"
                ).fetchone()
                if has_meta is not None:
                    row = conn.execute("SELECT v FROM sc_meta WHERE k = 'schema'").fetchone()
                    schema = None if row is None else int(row[0])
                has_entries = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sc_entries'"
                ).fetchone()
                if has_entries is not None:
                    missing = f"stratacache-doctor:{secrets.token_hex(8)}"
                    for _ in range(samples):
                        t0 = time.perf_counter()
                        conn.execute("SELECT env FROM sc_entries WHERE key = ?", (missing,)).fetchone()
                        rtts.append(time.perf_counter() - t0)
            finally:
                conn.close()
        except (sqlite3.Error, ValueError) as exc:
            schema_error = f"{type(exc).__name__}: {exc}"
    findings.append(
        evaluate_wal(
            path=str(path),
            exists=db.exists,
            header=header,
            schema=schema,
            schema_error=schema_error,
            fstype=fstype,
            expected_schema=SCHEMA_VERSION,
        )
    )
    if rtts:
        findings.append(evaluate_latency(rtts, tier="sqlite"))
    return findings


def _redis_findings(spec: RedisTier, samples: int) -> tuple[list[Finding], bool]:
    """The findings for one Redis tier, and whether it was unreachable."""
    if importlib.util.find_spec("redis") is None:
        return [
            Finding(
                "redis.reachable",
                "error",
                "redis-py is not installed",
                "RedisTier needs the redis extra",
                "pip install 'stratacache[redis]'",
            )
        ], True
    from stratacache.tiers.redis_admin import diagnose

    facts: RedisDiagnostics = diagnose(spec, pings=samples)
    shown = facts.address or (spec.socket_path if spec.kind == "unix" else ",".join(f"{h}:{p}" for h, p in spec.hosts))
    reach = evaluate_reachable(
        facts.error,
        address=shown,
        connect_seconds=facts.connect_seconds,
        timeout=spec.timeout,
        connect_timeout=spec.connect_timeout,
    )
    if facts.error is not None:
        findings = [reach]
        if spec.kind == "sentinel":
            findings.append(evaluate_topology("sentinel", {}, address=shown, sentinels=facts.sentinels))
        return findings, True
    info = facts.info
    if facts.config.get("maxmemory") is not None:
        maxmemory: int | None = int(facts.config["maxmemory"])
    else:
        maxmemory = int(info["maxmemory"]) if "maxmemory" in info else None
    policy = facts.config.get("maxmemory-policy") or (
        str(info["maxmemory_policy"]) if "maxmemory_policy" in info else None
    )
    used = int(info["used_memory"]) if "used_memory" in info else None
    findings = [
        reach,
        evaluate_version(info, facts.info_error),
        evaluate_maxmemory_policy(policy, maxmemory, used),
        evaluate_persistence(
            save=facts.config.get("save"),
            appendonly=facts.config.get("appendonly"),
            appendfsync=facts.config.get("appendfsync"),
            aof_enabled=int(info["aof_enabled"]) if "aof_enabled" in info else None,
            config_error=facts.config_error,
        ),
        evaluate_topology(
            spec.kind,
            info,
            address=shown,
            sentinels=facts.sentinels,
            cluster_info=facts.cluster_info,
            cluster_nodes=facts.cluster_nodes,
            cluster_error=facts.cluster_error,
            backplane_error=facts.backplane_error,
        ),
        evaluate_latency(facts.pings, tier="redis", timeout=spec.timeout),
    ]
    if facts.clock:
        best = min(facts.clock, key=lambda s: s.rtt)
        findings.append(evaluate_clock_skew(best.skew, best.rtt))
    else:
        findings.append(evaluate_clock_skew(None, error=facts.clock_error))
    return findings, False


@dataclass(slots=True)
class _Run:
    findings: list[Finding] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)


def run_doctor(
    urls: Sequence[str], *, codec: str | None = None, environ: Mapping[str, str] | None = None, samples: int = 20
) -> Report:
    """Check every tier of ``urls`` (memory tiers have nothing to check) and the codec.

    Raises:
        ConfigError: a bad URL or codec name (before anything is contacted).
    """
    env = os.environ if environ is None else environ
    tiers = parse_urls(urls)
    codec_findings = evaluate_codec(codec, env)
    run = _Run()
    for shown, spec in tiers:
        if isinstance(spec, MemoryTier):
            continue
        if isinstance(spec, RedisTier):
            found, unreachable = _redis_findings(spec, samples)
            if unreachable:
                run.unreachable.append(shown)
        elif isinstance(spec, SQLiteTier):
            found = _sqlite_findings(spec, samples)
        else:  # pragma: no cover - _spec_from_url knows only these
            continue
        run.findings.extend(f.about(shown) for f in found)
    run.findings.extend(codec_findings)
    return Report(tuple(run.findings), tuple(run.unreachable))
