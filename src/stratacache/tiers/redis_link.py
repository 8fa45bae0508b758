"""The Redis backplane link: a subscriber thread that hands other processes' invalidations to the engine.

Every write, delete and generation bump made through stratacache is published on ``<prefix>bp`` with the
writer's origin id (see ``tiers/redis.py``). One daemon thread per store keeps a pub/sub connection, queues the
messages of other origins, and pings the server every half heartbeat. The store's ``poll()`` drains the queue
into the engine, which drops the named keys from its L1 and learns the new generations.

The link is trusted only while it is demonstrably alive. When the connection breaks, or no reply (message or
pong) arrived for 1.5 heartbeats, the link is **lost**: every ``poll()`` then tells the engine to flush its whole
L1, until the thread has resubscribed; right after resubscribing it queues one more flush, because whatever was
published while it was away is gone. So an L1 never serves an entry whose invalidation it could have missed.

This module is thread-based and synchronous on purpose: ``poll()`` is synchronous in both engines (it runs before
every operation and must cost nothing when the queue is empty), and one implementation serves both.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import msgspec
import redis
import redis.backoff
import redis.retry
import redis.sentinel

from stratacache.errors import TierUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable

    from stratacache.tiers.redis_spec import RedisTier

__all__ = ["KIND_GENS", "KIND_KEYS", "Item", "Link", "connect_sync", "decode_message", "encode_keys_message", "sent_at"]

log = logging.getLogger("stratacache.redis")

KIND_KEYS: Final = 0
KIND_GENS: Final = 1
FLUSH: Final = None  # a queue item meaning "flush the whole L1"
MAX_QUEUE: Final = 10_000  # items held for a cache that does not poll; beyond, a single flush stands for them

Item = tuple[int, list[str], list[int], int | None, float | None]
"""A queued message: ``(kind, names, values, seq, lag)``; ``lag`` is seconds from publication to reception."""

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


def sent_at() -> int:
    """The publication stamp of a message: the publisher's wall clock, in microseconds.

    Receivers turn it into the invalidation lag (``Stats.lag_histogram``); across hosts it includes their clock
    skew, which ``stratacache doctor`` measures.
    """
    return time.time_ns() // 1000


def encode_keys_message(origin: str, keys: list[str]) -> bytes:
    """The message announcing that ``keys`` were written or deleted by ``origin``."""
    return _encoder.encode([origin, KIND_KEYS, keys, [], None, sent_at()])


def decode_message(data: bytes) -> tuple[str, int, list[str], list[int], int | None, float | None]:
    """``(origin, kind, names, values, seq, sent)`` of a message; ``ValueError`` when it is not one of ours.

    ``seq`` is the counters' sequence number after a generation bump (``None`` for key messages); ``sent`` the
    publisher's wall-clock time in seconds (``None`` from a publisher that does not stamp its messages).
    """
    try:
        origin, kind, names, values, *rest = _decoder.decode(data)
    except (msgspec.DecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"not a stratacache backplane message: {exc}") from exc
    seq = rest[0] if rest and isinstance(rest[0], int) else None
    stamp = rest[1] if len(rest) > 1 else None
    sent = stamp / 1e6 if isinstance(stamp, int | float) and not isinstance(stamp, bool) else None
    if not isinstance(origin, str) or kind not in {KIND_KEYS, KIND_GENS} or not isinstance(names, list):
        raise ValueError("not a stratacache backplane message")
    names = [n.decode("utf-8", "surrogatepass") if isinstance(n, bytes) else n for n in names]
    if not all(isinstance(n, str) for n in names) or not all(isinstance(v, int) for v in values):
        raise ValueError("not a stratacache backplane message")
    if kind == KIND_GENS and len(values) != len(names):
        raise ValueError("generation message with mismatched names and values")
    return origin, kind, names, values, seq, sent


class Link:
    """The subscriber thread of one store (see the module docstring).

    Args:
        connect: returns a new synchronous client to subscribe with (a fresh one after every loss).
        channel: the pub/sub channel.
        origin: this store's origin id; its own messages are ignored.
        heartbeat: seconds; pings go out every half heartbeat, silence for 1.5 heartbeats means lost.
    """

    def __init__(self, connect: Callable[[], redis.Redis], channel: str, origin: str, heartbeat: float) -> None:
        self._connect = connect
        self._channel = channel
        self._origin = origin
        self._heartbeat = heartbeat
        self.queue: deque[Item | None] = deque()
        self.pending = 0
        """Queued items not yet applied by ``poll`` (incremented before an item is queued)."""
        self.lost = True
        """True until the first subscription is confirmed, and from a loss until the next one."""
        self.losses = 0
        self.received = 0
        self.subscriptions = 0
        """Successful subscriptions so far (the first one, then one per recovery)."""
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stratacache-backplane", daemon=True)

    def start(self, wait: float) -> None:
        """Start the thread and wait up to ``wait`` seconds for the first subscription (lost until then)."""
        self._thread.start()
        self._ready.wait(wait)

    def stop(self) -> None:
        """Stop the thread (bounded by one heartbeat) and close its connection."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self._heartbeat + 1.0)

    def _push(self, item: Item | None) -> None:
        if self.pending >= MAX_QUEUE and item is not FLUSH:
            item = FLUSH  # nobody is polling (an idle cache): past the bound, one flush stands for the rest
            if self.queue and self.queue[-1] is FLUSH:
                return
        self.pending += 1
        self.queue.append(item)

    def _run(self) -> None:
        backoff = 0.01
        while not self._stop.is_set():
            try:
                self._session()
                backoff = 0.01
            except Exception as exc:
                if self._stop.is_set():
                    break
                if not self.lost:
                    self.losses += 1
                    log.warning("stratacache backplane lost (%s): flushing L1 until resubscribed", exc)
                self.lost = True
                self._ready.set()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._heartbeat)

    def _session(self) -> None:
        """One subscription: subscribe, confirm, then read until stopped or lost (raises on loss)."""
        client = self._connect()
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self._channel)
            deadline = time.monotonic() + max(self._heartbeat, 1.0)
            while True:
                msg = pubsub.get_message(timeout=self._heartbeat / 4)
                if msg is not None and msg.get("type") == "subscribe":
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("no subscription confirmation")
            # Anything published while unsubscribed is gone: flush once, then trust the messages that follow.
            self._push(FLUSH)
            self.subscriptions += 1  # the server answers again: the data path may skip its breaker's wait
            self.lost = False
            self._ready.set()
            self._listen(pubsub)
        finally:
            with contextlib.suppress(Exception):
                pubsub.close()
            with contextlib.suppress(Exception):
                client.close()

    def _listen(self, pubsub: Any) -> None:
        beat = self._heartbeat
        last_seen = last_ping = time.monotonic()
        while not self._stop.is_set():
            msg = pubsub.get_message(timeout=beat / 8)
            now = time.monotonic()
            if msg is not None:
                last_seen = now
                kind = msg.get("type")
                if kind == "message":
                    self._handle(msg.get("data"))
                elif kind == "subscribe":  # redis-py reconnected and resubscribed by itself: messages were lost
                    raise ConnectionError("the backplane connection was re-established behind our back")
            if now - last_ping >= beat / 2:
                pubsub.ping()
                last_ping = now
            if now - last_seen > 1.5 * beat:
                raise TimeoutError(f"no reply on the backplane for {now - last_seen:.2f} s")

    def _handle(self, data: object) -> None:
        if not isinstance(data, bytes):
            return
        try:
            origin, kind, names, values, seq, sent = decode_message(data)
        except ValueError:
            log.warning("stratacache backplane: unreadable message on %s; flushing L1", self._channel)
            self._push(FLUSH)
            return
        if origin == self._origin and kind == KIND_KEYS:
            return  # our own writes: our L1 already has them (our own bumps still advance the sequence)
        self.received += 1
        self._push((kind, names, values, seq, None if sent is None else time.time() - sent))


def connect_sync(spec: RedisTier, *, listen: bool = True) -> redis.Redis:
    """A plain synchronous client without retries (on a Cluster: any reachable node; PUBLISH reaches all).

    ``listen``: for the backplane subscription (reads may wait up to a heartbeat); otherwise for one-off
    administrative commands, bounded by the tier's own ``timeout``.
    """
    kw = spec.connection_kwargs()
    kw["socket_timeout"] = max(spec.timeout, spec.heartbeat) if listen else spec.timeout
    kw["retry"] = redis.retry.Retry(redis.backoff.NoBackoff(), 0)  # the caller decides what a failure means
    if spec.kind == "sentinel":
        sentinel_kw = {**spec.sentinel_kwargs(), "retry": redis.retry.Retry(redis.backoff.NoBackoff(), 0)}
        sentinel = redis.sentinel.Sentinel(list(spec.hosts), sentinel_kwargs=sentinel_kw, **kw)
        return sentinel.master_for(spec.service, db=spec.db)
    if spec.kind == "unix":
        return redis.Redis(unix_socket_path=spec.socket_path, db=spec.db, **kw)
    last: Exception | None = None
    for host, port in spec.hosts:
        client = redis.Redis(host=host, port=port, db=spec.db, **kw)
        try:
            client.ping()
        except (redis.exceptions.RedisError, OSError) as exc:
            last = exc
            client.close()
            continue
        return client
    raise TierUnavailableError(f"redis backplane: no reachable node ({last})")
