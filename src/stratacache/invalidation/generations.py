"""The engine's view of namespace and tag generations.

The authoritative counters live in the lowest shared tier (``home``). This object is the process-local cache of
them: it learns values from reads, from this process's own bumps (the values the store returned) and from other
processes' bumps (the backplane poll), and only ever moves a counter forward. Without a shared tier it *is* the
authority. Either way its memory is bounded: a cache of counters drops names and fetches them again; an
authority that grows past the bound bumps the namespace (a full, correct invalidation) and starts afresh.

Namespaces nest with ``/``: the namespace ``tenant:42/users`` sits below ``tenant:42``. Its generation is the sum
of the counters of its whole chain (``tenant:42``, ``tenant:42/users``): every counter only grows, so bumping any
ancestor changes the sum, and the entries below it become misses, without a scan and without a longer envelope.
For a namespace without ``/`` the chain is the namespace itself, so the value is its own counter.
"""

from __future__ import annotations

from typing import Final

from stratacache.core.keys import gen_name

__all__ = ["Generations"]

MAX_TRACKED: Final = 100_000


class Generations:
    """Namespace generation plus per-tag generations of one engine's namespace."""

    __slots__ = (
        "_last",
        "_one",
        "authoritative",
        "chain",
        "chain_names",
        "namespace",
        "ns",
        "ns_name",
        "synced",
        "tag_prefix",
        "tags",
    )

    def __init__(self, namespace: str, *, authoritative: bool) -> None:
        self.namespace = namespace
        self.ns_name = gen_name(namespace)
        parts = namespace.split("/")
        self.chain_names = tuple(gen_name("/".join(parts[: i + 1])) for i in range(len(parts)))
        """Counter names of the namespace's chain, outermost first, its own last."""
        self.tag_prefix = gen_name(namespace, "")
        self.authoritative = authoritative
        self.chain: dict[str, int] = {}
        self.ns: int | None = 0 if authoritative else None
        self.tags: dict[str, int] = {}
        self._last: tuple[int, dict[str, int], dict[str, int]] | None = None
        self._one: tuple[int] = (-1,)
        self.synced: int | None = None
        """Sequence number (shared tiers that number their bumps: Redis) up to which every counter held here is
        known to be current; ``None``: unknown. A read stamped with a later sequence must re-fetch counters."""

    def _sum_chain(self) -> None:
        chain = self.chain
        if len(chain) == len(self.chain_names):
            self.ns = sum(chain.values())

    def learn_chain(self, values: tuple[int, ...] | list[int]) -> None:
        """Record the counters of :attr:`chain_names` (in that order), moving each forward only."""
        chain = self.chain
        for name, value in zip(self.chain_names, values, strict=True):
            if value > chain.get(name, -1):
                chain[name] = value
        self._sum_chain()

    def store_names(self, tags: tuple[str, ...]) -> list[str]:
        """Names of ``tags``' counters in the shared store."""
        return [self.tag_prefix + t for t in tags]

    def missing(self, tags: tuple[str, ...]) -> tuple[str, ...]:
        """Tags whose generation is unknown here (always empty when authoritative)."""
        if self.authoritative:
            return ()
        known = self.tags
        return tuple(t for t in tags if t not in known)

    def learn_tags(self, tags: tuple[str, ...] | list[str], values: tuple[int, ...] | list[int]) -> None:
        """Record generations read from (or returned by) the shared store, moving forward only."""
        known = self.tags
        for tag, value in zip(tags, values, strict=True):
            if value > known.get(tag, -1):
                known[tag] = value
        self._trim()

    def _trim(self) -> None:
        """As a cache of the shared counters, drop the oldest names down to half the bound once it is passed.

        Dropping is safe: a dropped counter is read again from the shared tier when next needed, and later
        bumps are learned from the backplane whether or not the name is held.
        """
        known = self.tags
        excess = len(known) - MAX_TRACKED // 2
        if not self.authoritative and len(known) > MAX_TRACKED:
            for name in list(known)[:excess]:
                del known[name]

    def learn_ns(self, value: int) -> None:
        """Record this namespace's own counter (from a bump), moving forward only."""
        if self.authoritative:
            self.ns = max(self.ns or 0, value)
            return
        if value > self.chain.get(self.ns_name, -1):
            self.chain[self.ns_name] = value
        self._sum_chain()

    def learn_names(self, gens: dict[str, int]) -> bool:
        """Apply store-level names from another process; return whether the namespace moved."""
        moved = False
        prefix = self.tag_prefix
        chain_names = self.chain_names
        for name, value in gens.items():
            if name in chain_names:
                if self.authoritative:
                    continue
                if value > self.chain.get(name, -1):
                    self.chain[name] = value
                    moved = True
            elif name.startswith(prefix):
                tag = name[len(prefix) :]
                if value > self.tags.get(tag, -1):
                    self.tags[tag] = value
        if moved:
            self._sum_chain()
        self._trim()
        return moved

    def bump_local(self, tags: tuple[str, ...]) -> None:
        """Authoritative bump of tags (no shared tier); bounded by bumping the namespace when too many."""
        known = self.tags
        for tag in tags:
            known[tag] = known.get(tag, 0) + 1
        if len(known) > MAX_TRACKED:
            self.bump_ns_local()

    def bump_ns_local(self) -> None:
        """Authoritative namespace bump: every entry of the namespace becomes a miss."""
        self.ns = (self.ns or 0) + 1
        self.tags.clear()

    def covers(self, seq: int) -> bool:
        """Whether every bump up to ``seq`` is reflected in the counters held here."""
        synced = self.synced
        return synced is not None and seq <= synced

    def advance(self, seqs: tuple[int, ...] | list[int]) -> None:
        """Bumps numbered ``seqs`` (in order) were applied here: move :attr:`synced` along while contiguous."""
        synced = self.synced
        if synced is None:
            return
        for seq in seqs:
            if seq == synced + 1:
                synced = seq
        self.synced = synced

    def forget(self) -> None:
        """Forget everything learned (after losing track of the shared store's log); :meth:`restore` undoes it."""
        self.synced = None
        if not self.authoritative:
            if self.ns is not None:
                self._last = (self.ns, self.tags, self.chain)
            self.ns = None
            self.tags = {}
            self.chain = {}

    def restore(self) -> None:
        """Take back the counters known before the last :meth:`forget` if nothing was learned since.

        Used while the shared store is down: nobody can bump its counters then, and entries cached meanwhile live
        only ``outage_ttl``, so the last known values are the best available (``docs/redis.md``).
        """
        if self.ns is None and self._last is not None:
            self.ns, self.tags, self.chain = self._last[0], dict(self._last[1]), dict(self._last[2])

    def snapshot(self, tags: tuple[str, ...]) -> tuple[int, ...] | None:
        """``(ns, *tag gens)`` if all are known, else ``None``."""
        ns = self.ns
        if ns is None:
            return None
        if not tags:
            one = self._one
            if one[0] != ns:  # one shared tuple per namespace generation: 48 bytes less per L1 entry
                one = self._one = (ns,)
            return one
        known = self.tags
        if self.authoritative:
            return (ns, *(known.get(t, 0) for t in tags))
        out = [ns]
        for t in tags:
            v = known.get(t)
            if v is None:
                return None
            out.append(v)
        return tuple(out)

    def current(self, gens: tuple[int, ...], tags: tuple[str, ...]) -> bool | None:
        """Whether stored ``gens`` are current: ``True``/``False``, or ``None`` when a counter is unknown."""
        ns = self.ns
        if ns is None:
            return None
        if gens[0] != ns:
            return False
        if not tags:
            return True
        known = self.tags
        auth = self.authoritative
        for i, t in enumerate(tags, 1):
            v = known.get(t)
            if v is None:
                if not auth:
                    return None
                v = 0
            if v != gens[i]:
                return False
        return True
