"""The shared tier on Redis/Valkey, written once as async and generated into ``_sync/redis.py``.

Layout (``docs/redis.md``), with ``P`` the tier's prefix (``sc:`` by default) and ``k`` the engine's key:

- ``P{k}``: the serialized envelope, with a PX TTL equal to the entry's garbage-collection time.
- ``P{k}f``: the key's fill lease (fence): a random token set before a loader runs; a write or delete of ``k``
  deletes it, and a fill stores only while its token is still there (memcache's leases). ``{k}`` is a hash tag,
  so a key and its lease share a Cluster slot and every script touches one slot.
- ``P{g}gens``: one hash of namespace and tag generation counters, born with an epoch; ``P{g}seq``: the number of
  the last bump, read with the envelopes so that a read never trusts counters older than itself.
- ``Pbp``: the backplane channel; writes, deletes and bumps publish ``[origin, kind, names, values]`` from the
  same script that changed the data, so a subscriber never sees a change before it happened.

Budgets are stratacache's, not redis-py's defaults: a socket timeout per command, a connect timeout, one retry
after a connection error (never after a timeout), a bounded pool, and a circuit breaker that refuses calls
without touching the network while the server is down. Every redis-py exception becomes a ``TierError``:
``TierTimeoutError`` for timeouts, ``TierUnavailableError`` for connection failures and an open breaker.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import secrets
import ssl
import threading
import uuid
from typing import TYPE_CHECKING, Any, Final

import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.exceptions
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.crc import key_slot

from stratacache._primitives import awithin
from stratacache._types import Changes
from stratacache.core.breaker import CLOSED, Breaker
from stratacache.core.envelope import decode_envelope, encode_envelope
from stratacache.core.keys import escape_glob
from stratacache.errors import DecodeError, TierError, TierTimeoutError, TierUnavailableError
from stratacache.metrics.stats import TierCounters
from stratacache.tiers import redis_direct, redis_link
from stratacache.tiers.redis_link import KIND_KEYS, Link
from stratacache.tiers.redis_reads import reader

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Awaitable, Callable, Sequence

    from stratacache.core.envelope import Envelope
    from stratacache.tiers.redis_spec import RedisTier

__all__ = ["AsyncRedisStore"]

_UNAVAILABLE: Final = (
    redis.exceptions.ConnectionError,  # refused, reset, pool wait timed out, Sentinel master not found...
    ConnectionError,
    OSError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,  # a demoted master after a failover
    redis.exceptions.BusyLoadingError,
    redis.exceptions.RedisClusterException,  # no startup node reachable
)
_TIMEOUTS: Final = (redis.exceptions.TimeoutError, TimeoutError)

# KEYS: data1, lease1, data2, lease2, ...  ARGV: channel, message, env1, px1, env2, px2, ...
_SET: Final = """
for i = 1, #KEYS, 2 do
  local px = tonumber(ARGV[i + 3])
  if px > 0 then redis.call('SET', KEYS[i], ARGV[i + 2], 'PX', px) else redis.call('SET', KEYS[i], ARGV[i + 2]) end
  redis.call('DEL', KEYS[i + 1])
end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return 1
"""
# KEYS: data1, lease1, ...  ARGV: token, env1, px1, ...  -> 1/0 per key: stored while the lease was ours
_FILL: Final = """
local out = {}
for i = 1, #KEYS, 2 do
  if redis.call('GET', KEYS[i + 1]) == ARGV[1] then
    local px = tonumber(ARGV[i + 2])
    if px > 0 then redis.call('SET', KEYS[i], ARGV[i + 1], 'PX', px) else redis.call('SET', KEYS[i], ARGV[i + 1]) end
    redis.call('DEL', KEYS[i + 1])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""
# KEYS: data1, lease1, ...  ARGV: channel, message  -> number of data keys that existed
_DELETE: Final = """
local n = 0
for i = 1, #KEYS, 2 do
  n = n + redis.call('DEL', KEYS[i])
  redis.call('DEL', KEYS[i + 1])
end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return n
"""
# KEYS: lease  ARGV: token  -> 1 if it was ours and is gone
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# The counters' hash is born with an epoch (server time in ms): a counter never bumped reads as the epoch. If the
# hash is lost (eviction, FLUSHDB, a restart without persistence) it is born again with a later epoch, so no
# envelope stamped before the loss can match a counter read after it. The bump sequence lives in its own string
# key, so that a read fetches it with the envelopes in one plain MGET; it starts at server time in µs when missing
# (above every number handed out before, at fewer than a thousand bumps a millisecond).
_EPOCH: Final = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function epoch(k)
  local e = redis.call('HGET', k, '\\0epoch')
  if not e then
    e = string.format('%d', now_ms())
    redis.call('HSET', k, '\\0epoch', e)
  end
  return tonumber(e)
end
local function ensure_seq(k)
  if redis.call('EXISTS', k) == 0 then redis.call('SET', k, string.format('%d', now_ms() * 1000)) end
end
"""
# KEYS: gens hash, seq  ARGV: channel, origin, sent-at (us), name1, name2, ...  -> new values, then the bump's
# sequence number
_BUMP: Final = (
    _EPOCH
    + """
local base = epoch(KEYS[1])
ensure_seq(KEYS[2])
local now = now_ms()
local names, values = {}, {}
for i = 4, #ARGV do
  local v = math.max((tonumber(redis.call('HGET', KEYS[1], ARGV[i])) or base) + 1, now)
  redis.call('HSET', KEYS[1], ARGV[i], string.format('%d', v))
  names[#names + 1] = ARGV[i]
  values[#values + 1] = v
end
local seq = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[1], cmsgpack.pack({ARGV[2], 1, names, values, seq, tonumber(ARGV[3])}))
values[#values + 1] = seq
return values
"""
)
# KEYS: gens hash, seq  ARGV: names  -> {seq, value1, ...}: counters (the epoch for one never bumped) at one instant
_GENS: Final = (
    _EPOCH
    + """
local base = epoch(KEYS[1])
ensure_seq(KEYS[2])
local out = {tonumber(redis.call('GET', KEYS[2]))}
for i = 1, #ARGV do out[#out + 1] = tonumber(redis.call('HGET', KEYS[1], ARGV[i])) or base end
return out
"""
)


def _drain(queue: deque[redis_link.Item | None], n: int) -> Changes:
    """The next ``n`` backplane items merged into one :class:`Changes` (keys, newest counters, bump numbers)."""
    keys: dict[str, None] = {}
    gens: dict[str, int] = {}
    seqs: list[int] = []
    lags: list[float] = []
    flush = False
    for _ in range(n):
        item = queue.popleft()
        if item is None:
            flush = True
            continue
        kind, names, values, seq, lag = item
        if lag is not None:
            lags.append(lag)
        if kind == KIND_KEYS:
            keys.update(dict.fromkeys(names))
            continue
        for name, value in zip(names, values, strict=True):
            gens[name] = max(value, gens.get(name, 0))
        if seq is not None:
            seqs.append(seq)
    return Changes(tuple(keys), gens, flush_all=flush, seqs=tuple(seqs), lags=tuple(lags))


def _misconfigured(exc: BaseException) -> bool:
    """Whether a connection failure is a configuration error (credentials, ACL, TLS verification).

    The error's causes count too: a failed Sentinel lookup is chained to the Sentinel's own error (``_Sentinel``).
    """
    if isinstance(exc, redis.exceptions.AuthenticationError | redis.exceptions.AuthorizationError):
        return True
    seen: BaseException | None = exc
    for _ in range(4):  # redis-py wraps the ssl error in a ConnectionError
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        if isinstance(seen, redis.exceptions.AuthenticationError | redis.exceptions.AuthorizationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _px(env: Envelope[bytes], now: float) -> int:
    """The key's PX TTL in ms (0: none); negative when the entry is already past collection."""
    gc_at = env.gc_at()
    if gc_at is None:
        return 0
    return max(-1, math.ceil((gc_at - now) * 1000))


class AsyncRedisStore:
    """A store of serialized envelopes on Redis/Valkey (see the module docstring for the layout)."""

    shared = True
    name = "redis"
    supports_leases = True

    def __init__(self, spec: RedisTier, *, now: Callable[[], float], monotonic: Callable[[], float]) -> None:
        self.spec = spec
        self.max_bytes: int | None = int(spec.max_value_bytes)  # the largest value: what the engine checks a set by
        self.bound_bytes: int | None = None  # the tier's byte bound in stats(): the server's maxmemory, not ours
        self.outage_ttl: float | None = spec.outage_l1_ttl
        self.lease_ttl = spec.lease_ttl
        self.strict_reads = spec.strict_reads
        self._now = now
        self._monotonic = monotonic
        self._prefix = spec.prefix
        self._gens_key = spec.prefix + "{g}gens"  # one slot for the counters and their sequence (bump script)
        self._seq_key = spec.prefix + "{g}seq"
        self._channel = spec.prefix + "bp"
        self.origin = uuid.uuid4().hex
        self._counters = TierCounters()
        self.breaker = Breaker(failures=spec.breaker_failures, open_for=spec.breaker_open_for)
        self._cluster = spec.kind == "cluster"
        # The async tier bounds each whole call by one deadline: the command's timeout while the last call
        # succeeded (its pooled connections are warm), plus the connect timeout when a reconnect is likely.
        self._warm = False
        self._client: Any = None  # see _connected()
        self._reader: Any = None  # what get/mget run on: the client, or the sync tier's direct path
        self._set: Any = None
        self._fill: Any = None
        self._del: Any = None
        self._bump: Any = None
        self._release: Any = None
        self._gens_script: Any = None
        self._poll_lock = threading.Lock()
        self._subscriptions = 0  # the link subscriptions this store has reacted to
        self._outage_flushed = False
        self._failing_since: float | None = None  # wall time of the first failure of the current streak
        self._opened_seen = 0  # breaker openings already followed by a distrust window
        self.distrust_before = 0.0
        self.distrust_until = 0.0
        """After an outage, until this time, entries written before the outage began are misses: another process
        may hold journaled invalidations of them that it has not replayed yet (it reconnects and replays within a
        heartbeat and a settle interval of the server's return)."""
        self._admin: Any = None  # a small synchronous client for usage(), opened on first use
        self._link: Link | None = None
        if spec.backplane:
            self._link = Link(
                lambda: redis_link.connect_sync(spec.backplane_spec()), self._channel, self.origin, spec.heartbeat
            )
            self._link.start(wait=spec.connect_timeout + spec.timeout)

    @property
    def counters(self) -> TierCounters:
        """This tier's counters."""
        return self._counters

    # ------------------------------------------------------------------ the guarded call

    def _connected(self) -> Any:
        """The client, created on first use: a cache starts even while its server is down."""
        client = self._client
        if client is None:
            client = _connect(self.spec)
            self._set = client.register_script(_SET)
            self._fill = client.register_script(_FILL)
            self._del = client.register_script(_DELETE)
            self._bump = client.register_script(_BUMP)
            self._release = client.register_script(_RELEASE)
            self._gens_script = client.register_script(_GENS)
            self._reader = reader(client, self.spec, _backoff())
            self._client = client
        return client

    async def _call(self, op: Callable[[Any], Awaitable[Any]], *, read: bool = False) -> Any:
        """Run ``op(client)`` under the breaker, mapping every failure to a ``TierError``.

        ``read``: ``op`` only calls ``get``/``mget``, which it may run on the reader (``tiers/redis_direct.py``).

        Only signs of an unreachable server (connection failures, timeouts) count against the breaker: an error
        reply (``OOM``, ``NOPERM``...), wrong credentials or a refused certificate are raised as plain
        ``TierError`` every time, so a misconfiguration stays loud instead of turning into a silent outage.
        """
        breaker = self.breaker
        spec = self.spec
        link = self._link
        if link is not None and link.subscriptions != self._subscriptions:
            # The backplane just resubscribed: the server answers again. Close the breaker now rather than after
            # its open_for, so journaled invalidations are replayed as early as other processes may read.
            self._subscriptions = link.subscriptions
            breaker.reset()
        if not breaker.allow(self._monotonic()):
            self._counters.skipped += 1
            raise TierUnavailableError("redis: circuit breaker open")
        try:
            deadline = spec.timeout if self._warm else spec.timeout + spec.connect_timeout
            client = self._connected()
            result = await awithin(op(self._reader if read else client), deadline)
        except _TIMEOUTS as exc:
            self._warm = False
            self._failed()
            raise TierTimeoutError(
                f"redis: {str(exc) or 'timed out'} (timeout={spec.timeout} s, connect_timeout={spec.connect_timeout} s)"
            ) from exc
        except redis.exceptions.MaxConnectionsError as exc:  # the server is fine; this process is saturated
            raise TierUnavailableError(f"redis: {exc} (max_connections={self.spec.max_connections})") from exc
        except _UNAVAILABLE as exc:
            if "No connection available" in str(exc):  # the sync blocking pool's wait ran out: we are saturated
                raise TierUnavailableError(f"redis: {exc} (max_connections={spec.max_connections})") from exc
            self._warm = False
            if _misconfigured(exc):
                raise TierError(f"redis: {exc} (check the URL's credentials and TLS settings)") from exc
            self._failed()
            raise TierUnavailableError(f"redis: {exc}") from exc
        except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as exc:
            raise TierError(f"redis: {exc}") from exc
        breaker.success()
        self._warm = True
        if self._failing_since is not None:
            self._recovered()
        return result

    def _failed(self) -> None:
        """An unreachability failure: count it against the breaker, note when the streak began."""
        if self._failing_since is None:
            self._failing_since = self._now()
        self.breaker.failure(self._monotonic())

    def _recovered(self) -> None:
        """The first success after failures.

        After a real outage (the breaker opened), entries written before it began are misses for a while: see
        :attr:`distrust_until`.
        """
        since, self._failing_since = self._failing_since, None
        if since is not None and self.breaker.opened > self._opened_seen:
            self._opened_seen = self.breaker.opened
            self.distrust_before = since
            self.distrust_until = self._now() + self.spec.heartbeat + _REPLAY_SLACK

    def _script(self, name: str, keys: list[str], args: list[Any]) -> Callable[[Any], Awaitable[Any]]:
        """A call of the Lua script ``name`` (loaded once per client; redis-py reloads it on NOSCRIPT)."""
        return lambda c: getattr(self, name)(keys=keys, args=args, client=c)

    def _keys(self, k: str) -> tuple[str, str]:
        data = f"{self._prefix}{{{k}}}"
        return data, data + "f"

    def _groups(self, keys: Sequence[str]) -> list[list[int]]:
        """Indices of ``keys`` grouped by Cluster slot (one group when not on a Cluster)."""
        if not self._cluster:
            return [list(range(len(keys)))]
        groups: dict[int, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(key_slot(self._keys(k)[0].encode("utf-8", "surrogatepass")), []).append(i)
        return list(groups.values())

    # ------------------------------------------------------------------ Store protocol

    async def get_many(self, keys: Sequence[str]) -> list[Envelope[bytes] | None]:
        """Envelopes of ``keys`` (GET or MGET; per slot on a Cluster), ``None`` where absent or unreadable."""
        names = [self._keys(k)[0] for k in keys]
        if len(names) == 1:
            name = names[0]
            raw = [await self._call(lambda c: c.get(name), read=True)]
        elif self._cluster:
            raw = await self._call(lambda c: c.mget_nonatomic(names))
        else:
            raw = await self._call(lambda c: c.mget(names), read=True)
        return self._decode_all(raw)

    def _decode_all(self, raw: Sequence[bytes | None]) -> list[Envelope[bytes] | None]:
        out: list[Envelope[bytes] | None] = []
        for data in raw:
            if data is None:
                out.append(None)
                continue
            try:
                out.append(decode_envelope(data))
            except DecodeError:
                self._counters.errors += 1
                out.append(None)
        return out

    async def set_many(self, items: Sequence[tuple[str, Envelope[bytes]]]) -> None:
        """Store envelopes, void the keys' leases and announce the keys on the backplane, atomically per slot.

        Writes are announced whether or not this store subscribes (``backplane=False`` only stops listening).
        """
        now = self._now()
        for group in self._groups([k for k, _ in items]):
            keys: list[str] = []
            names: list[str] = []
            envs: list[Any] = []
            for i in group:
                k, env = items[i]
                keys.extend(self._keys(k))
                names.append(k)
                px = _px(env, now)
                envs.extend((encode_envelope(env), px if px >= 0 else 1))
            args = [self._channel, redis_link.encode_keys_message(self.origin, names), *envs]
            await self._call(self._script("_set", keys, args))

    async def fence(self, keys: Sequence[str]) -> int:
        """Take a fill lease on ``keys``: a random token that a write or delete of a key voids."""
        token = secrets.randbits(62) + 1
        px = math.ceil(self.spec.lease_ttl * 1000)
        for group in self._groups(keys):
            leases = [self._keys(keys[i])[1] for i in group]

            async def take(c: Any, leases: list[str] = leases) -> Any:
                if len(leases) == 1:
                    return await c.set(leases[0], token, px=px)
                pipe = c.pipeline(transaction=False)
                for lease in leases:
                    pipe.set(lease, token, px=px)
                return await pipe.execute()

            await self._call(take)
        return token

    async def scan(self, prefix: str, cursor: object, count: int) -> tuple[object, list[str]]:
        """One SCAN page of this tier's keys starting with ``prefix``: ``(next cursor or None when done, keys)``.

        SCAN is O(keys in the database) over a whole walk and runs in pages of ``count``: an admin operation,
        never a hot path. On a Cluster the cursor walks the primaries one after another.
        """
        match = f"{escape_glob(self._prefix)}{{{escape_glob(prefix)}*"
        node, position = cursor if isinstance(cursor, tuple) else (0, 0)

        async def page(c: Any) -> tuple[Any, int]:
            if not self._cluster:
                return await c.scan(cursor=position, match=match, count=count), 1
            primaries = c.get_primaries()
            reply = await c.scan(cursor=position, match=match, count=count, target_nodes=primaries[node])
            return reply, len(primaries)

        (nxt, names), nodes = await self._call(page)
        if isinstance(nxt, dict):  # a Cluster gives the cursor per node
            nxt = next(iter(nxt.values()), 0)
        start = len(self._prefix) + 1
        keys = []
        for raw in names:
            name = raw.decode("utf-8", "surrogatepass") if isinstance(raw, bytes) else raw
            if name.endswith("}"):  # a data key (leases end with "}f")
                keys.append(name[start:-1])
        nxt = int(nxt)
        if nxt:
            return (node, nxt), keys
        return ((node + 1, 0) if node + 1 < nodes else None), keys

    async def claim(self, key: str, ttl: float) -> int | None:
        """Take the load lease of ``key`` for ``ttl`` seconds if nobody holds it (``SET NX PX``).

        Returns its token, which is also this key's fence for :meth:`fill_many`; ``None`` if another load holds
        it. A write or delete of the key voids the lease, as it voids any fence.
        """
        token = secrets.randbits(62) + 1
        lease = self._keys(key)[1]
        px = max(1, math.ceil(ttl * 1000))
        taken = await self._call(lambda c: c.set(lease, token, px=px, nx=True))
        return token if taken else None

    async def release(self, key: str, token: int) -> None:
        """Drop the lease of ``key`` if it is still ``token`` (a filled or voided lease is gone already)."""
        await self._call(self._script("_release", [self._keys(key)[1]], [token]))

    async def fill_many(self, items: Sequence[tuple[str, Envelope[bytes]]], since: int) -> list[str]:
        """Store loaded values whose lease ``since`` is still theirs (no write or delete since); return those."""
        now = self._now()
        stored: list[str] = []
        for group in self._groups([k for k, _ in items]):
            keys: list[str] = []
            args: list[Any] = [since]
            for i in group:
                k, env = items[i]
                keys.extend(self._keys(k))
                px = _px(env, now)
                args.extend((encode_envelope(env), px if px >= 0 else 1))
            flags = await self._call(self._script("_fill", keys, args))
            stored.extend(items[i][0] for i, ok in zip(group, flags, strict=True) if ok)
        return stored

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete keys and their leases and announce them on the backplane; return how many existed."""
        count = 0
        for group in self._groups(keys):
            names = [keys[i] for i in group]
            args = [self._channel, redis_link.encode_keys_message(self.origin, names)]
            redis_keys = list(itertools.chain.from_iterable(self._keys(k) for k in names))
            count += int(await self._call(self._script("_del", redis_keys, args)))
        return count

    async def get_gens(self, names: Sequence[str]) -> tuple[int, ...]:
        """Current generation counters (0 when never bumped): one HMGET."""
        return (await self.get_gens_seq(names))[0]

    async def get_gens_seq(self, names: Sequence[str]) -> tuple[tuple[int, ...], int]:
        """Counters and the counters' sequence number (bumps so far) read at one instant: one script.

        A counter never bumped reads as the hash's epoch (see ``_EPOCH``), never as 0.
        """
        out = await self._call(self._script("_gens_script", [self._gens_key, self._seq_key], list(names)))
        values = tuple(int(v) for v in out)
        return values[1:], values[0]

    async def get_many_seq(self, keys: Sequence[str]) -> tuple[list[Envelope[bytes] | None], int]:
        """:meth:`get_many` plus the counters' sequence number when the envelopes were read.

        One ``MGET`` of the sequence key and the envelopes on a single server (read at the same instant); on a
        Cluster, where the sequence lives in another slot, the sequence is read first, then the envelopes: a bump
        in between is concurrent with the read, which may be ordered before it.
        """
        names = [self._keys(k)[0] for k in keys]
        if self._cluster:
            _, seq = await self.get_gens_seq(())
            return await self.get_many(keys), seq
        seq_key = self._seq_key
        raw = await self._call(lambda c: c.mget([seq_key, *names]), read=True)
        if raw[0] is None:  # no sequence (first use, or lost): the counters script creates it
            _, seq = await self.get_gens_seq(())
            return self._decode_all(raw[1:]), seq
        return self._decode_all(raw[1:]), int(raw[0])

    async def bump_gens(self, names: Sequence[str]) -> tuple[int, ...]:
        """Advance counters atomically and announce the new values on the backplane (see :meth:`bump_gens_seq`)."""
        return (await self.bump_gens_seq(names))[0]

    async def bump_gens_seq(self, names: Sequence[str]) -> tuple[tuple[int, ...], int]:
        """Advance counters atomically and announce the new values on the backplane.

        A counter moves to ``max(current + 1, server time in ms)``: after the server lost its data (a restart
        without persistence, an eviction, a ``FLUSHDB``), new values are still above every value handed out
        before, so an entry stamped with an old value can never become current again.
        """
        args = [self._channel, self.origin, redis_link.sent_at(), *names]
        keys = [self._gens_key, self._seq_key]
        values = await self._call(lambda c: self._bump(keys=keys, args=args, client=c))
        out = tuple(int(v) for v in values)
        return out[:-1], out[-1]

    def poll(self, apply: Callable[[Changes], None]) -> None:
        """Hand other processes' changes to ``apply``.

        A lost backplane means flushing the whole L1: at every poll while the server answers (invalidations may
        be passing us by), once when the server itself is down (its breaker open): nobody can change it then, so
        the L1 goes on caching, each entry capped at ``outage_ttl``, until the link is back and flushes again.
        """
        link = self._link
        if link is None or (not link.pending and not link.lost):
            return
        with self._poll_lock:
            if link.lost:
                if self.breaker.state == CLOSED:  # the data path works: we may be missing invalidations
                    apply(Changes((), {}, flush_all=True))
                elif not self._outage_flushed:  # the server is down: flush once, then cache under outage_ttl
                    self._outage_flushed = True
                    apply(Changes((), {}, flush_all=True, keep_gens=True))
                return
            self._outage_flushed = False
            queue = link.queue
            n = len(queue)
            if not n:
                return
            changes = _drain(queue, n)
            try:
                apply(changes)
            finally:
                link.pending -= n

    def link_status(self) -> tuple[str, int, int] | None:
        """``(state, losses, messages received)`` of the backplane: ``"up"`` or ``"lost"``; ``None`` without one."""
        link = self._link
        if link is None:
            return None
        return ("lost" if link.lost else "up"), link.losses, link.received

    def usage(self) -> tuple[int, int]:
        """``(keys in the database, used memory)`` from DBSIZE and INFO; ``(0, 0)`` while unreachable.

        On a Cluster these are one node's figures, and Redis counts every key of the database, not only this
        cache's. Not on any hot path (``stats()`` only).
        """
        if self.breaker.state != "closed":
            return (0, 0)
        try:
            if self._admin is None:
                self._admin = redis_link.connect_sync(self.spec, listen=False)
            size = self._admin.dbsize()
            memory = self._admin.info("memory").get("used_memory", 0)
        except (redis.exceptions.RedisError, OSError, TierError):
            return (0, 0)
        return (int(size), int(memory))

    def close_now(self) -> None:
        """Stop the backplane thread without awaiting (for a cache whose constructor failed)."""
        if self._link is not None:
            self._link.stop()

    async def close(self) -> None:
        """Stop the backplane thread and close the connection pools."""
        if self._link is not None:
            self._link.stop()
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                admin.close()
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                await client.aclose()
            sentinel = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
            if sentinel is not None:  # the master's client leaves the Sentinels' own clients open
                with contextlib.suppress(redis.exceptions.RedisError, OSError):
                    await sentinel.aclose()


def _backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(cap=0.02, base=0.002)


def _retry(spec: RedisTier) -> redis.asyncio.retry.Retry:
    """One retry (by default) after a connection error, never after a timeout: the timeout spent the budget."""
    return redis.asyncio.retry.Retry(_backoff(), spec.retries, supported_errors=(redis.exceptions.ConnectionError,))


_REPLAY_SLACK: Final = 0.5  # seconds, on top of a heartbeat: how long other processes may take to replay journals


def _sentinel_kwargs(spec: RedisTier) -> dict[str, Any]:
    """The Sentinels' connection arguments, each Sentinel asked once per lookup (the next one is tried instead).

    redis-py's default would retry a refused Sentinel (or one refusing the credentials) 3 times with up to 10 s of
    backoff, far beyond the tier's budgets.
    """
    return {**spec.sentinel_kwargs(), "retry": redis.asyncio.retry.Retry(NoBackoff(), 0)}


class _Sentinel(redis.asyncio.sentinel.Sentinel):
    """redis-py's Sentinel manager, chaining a failed master lookup to a Sentinel's configuration error.

    redis-py skips a Sentinel that fails and raises ``MasterNotFoundError`` naming the errors by class alone (redis-py
    8), so a Sentinel refusing the credentials or the certificate would pass for an outage. Here the lookup's error
    is chained (``from``) to the first such failure, which :func:`_misconfigured` finds.
    """

    def __init__(self, spec: RedisTier) -> None:
        kw = spec.connection_kwargs(asynchronous=True)
        super().__init__(list(spec.hosts), sentinel_kwargs=_sentinel_kwargs(spec), **kw)
        self.failures: list[BaseException] = []
        recording: list[Any] = [_RecordingSentinel(client, self.failures) for client in self.sentinels]
        self.sentinels = recording

    async def discover_master(self, service_name: str) -> Any:
        """The master's address, from the first Sentinel that knows a healthy one."""
        self.failures.clear()
        try:
            return await super().discover_master(service_name)
        except redis.asyncio.sentinel.MasterNotFoundError:
            cause = next((f for f in self.failures if _misconfigured(f)), None)
            if cause is None:
                raise
            raise redis.asyncio.sentinel.MasterNotFoundError(
                f"No master found for {service_name!r}: a Sentinel refused the connection: {cause}"
            ) from cause
        finally:
            self.failures.clear()


class _RecordingSentinel:
    """A Sentinel's client that notes the connection errors of its master lookups (see :class:`_Sentinel`)."""

    def __init__(self, client: Any, failures: list[BaseException]) -> None:
        self._client = client
        self._failures = failures

    async def sentinel_masters(self) -> Any:
        """``SENTINEL MASTERS``, noting a connection error before it propagates."""
        try:
            return await self._client.sentinel_masters()
        except redis.exceptions.ConnectionError as exc:
            self._failures.append(exc)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _pool_wait(spec: RedisTier, *, asynchronous: bool) -> float | None:
    """How long a caller waits for a pooled connection: async, within its call's deadline; sync, ``timeout``."""
    return None if asynchronous else spec.timeout


def _connect(spec: RedisTier) -> Any:
    """A redis-py client for ``spec``'s topology, with stratacache's budgets."""
    kw = spec.connection_kwargs(asynchronous=True)
    retry = _retry(spec)
    if spec.kind == "cluster":
        nodes = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in spec.hosts]
        return redis.asyncio.cluster.RedisCluster(
            startup_nodes=nodes, retry=retry, max_connections=spec.max_connections, **kw
        )
    if spec.kind == "sentinel":
        sentinel = _Sentinel(spec)
        return sentinel.master_for(spec.service, db=spec.db, retry=retry, max_connections=spec.max_connections)
    if spec.kind == "unix":
        kw["connection_class"] = redis.asyncio.UnixDomainSocketConnection
        kw["path"] = spec.socket_path
    else:
        kw["host"], kw["port"] = spec.hosts[0]
        if kw.pop("ssl", False):
            kw["connection_class"] = redis.asyncio.SSLConnection
    pool = redis_direct.pool_class(asynchronous=True)(
        max_connections=spec.max_connections, timeout=_pool_wait(spec, asynchronous=True), db=spec.db, retry=retry, **kw
    )
    return redis.asyncio.Redis.from_pool(pool)  # the client owns the pool: close() closes it
