"""Codec selection: a name (``"msgpack"``, ``"json"``, ``"pickle"``) or a :class:`~stratacache._types.Codec`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from stratacache._types import Codec
from stratacache.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SIGNING_KEY_ENV", "resolve_codec", "sets_as_lists"]

SIGNING_KEY_ENV = "STRATACACHE_SIGNING_KEY"
"""Environment variable holding the pickle signing key(s): ``secret`` or ``id1:secret1,id2:secret2``."""


def sets_as_lists(obj: object) -> object:
    """Msgspec ``enc_hook`` shared by the msgpack and JSON codecs: sets become lists, anything else is refused."""
    if isinstance(obj, set | frozenset):
        return list(obj)
    raise NotImplementedError(f"objects of type {type(obj).__name__} are not serializable")


def resolve_codec(codec: str | Codec, *, environ: Mapping[str, str] | None = None) -> Codec:
    """Return a codec object for a name or pass a codec object through.

    ``"pickle"`` reads its signing key(s) from :data:`SIGNING_KEY_ENV`; without one it is refused.
    ``"msgpack+zstd"`` / ``"json+zstd"`` compress payloads above 1 KiB (needs ``stratacache[zstd]``).

    Raises:
        ConfigError: unknown name, a pickle codec without a signing key, or a missing extra.
    """
    from stratacache.codecs.json import JsonCodec
    from stratacache.codecs.msgpack import MsgpackCodec
    from stratacache.codecs.signed_pickle import SignedPickleCodec
    from stratacache.codecs.zstd import ZstdCodec

    if isinstance(codec, Codec) and not isinstance(codec, str):
        if not isinstance(codec.id, int) or not 0 < codec.id < 256:
            raise ConfigError(f"codec id must be an int in 1..255, got {codec.id!r}")
        return codec
    if not isinstance(codec, str):
        raise ConfigError(f"codec must be a name or a Codec object, not {type(codec).__name__}")
    base, _, extra = codec.strip().lower().partition("+")
    inner: Codec
    if base == "msgpack":
        inner = MsgpackCodec()
    elif base == "json":
        inner = JsonCodec()
    elif base == "pickle":
        env = os.environ if environ is None else environ
        secret = env.get(SIGNING_KEY_ENV, "")
        if not secret:
            raise ConfigError(
                f"codec='pickle' needs a signing key: set {SIGNING_KEY_ENV} or pass "
                "codec=stratacache.SignedPickleCodec(secret=...) (unsigned pickle from a store is remote code "
                "execution)"
            )
        inner = SignedPickleCodec.from_env_value(secret)
    else:
        raise ConfigError(f"unknown codec {codec!r}: use 'msgpack', 'json', 'pickle' or a Codec object")
    if extra == "":
        return inner
    if extra == "zstd":
        return ZstdCodec(inner)
    raise ConfigError(f"unknown codec suffix {extra!r} in {codec!r}: only '+zstd' is supported")
