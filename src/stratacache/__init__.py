"""stratacache: a correct-first multi-tier cache for Python services in front of databases.

>>> import stratacache as sc
>>> cache = sc.Cache(sc.MemoryTier(max_entries=10_000), namespace="doc", ttl=60)
>>> cache.set("user:1", {"name": "Ada"}, tags=["user:1"])
>>> cache.get("user:1")
{'name': 'Ada'}
>>> cache.invalidate_tags("user:1")
>>> cache.get("user:1") is None
True
"""

from stratacache._api import AsyncCache, Cache, open
from stratacache._types import Clock, Codec
from stratacache.codecs import JsonCodec, MsgpackCodec, SignedPickleCodec, ZstdCodec
from stratacache.core.loadpolicy import LoadPolicy
from stratacache.errors import (
    CacheClosedError,
    CodecError,
    ConfigError,
    DecodeError,
    EncodeError,
    InvalidKeyError,
    InvalidTTLError,
    LoadTimeout,
    SerializationError,
    SignatureError,
    StrataCacheError,
    TierError,
    TierTimeoutError,
    TierUnavailableError,
    ValueTooLargeError,
)
from stratacache.metrics.accesslog import AccessLog, HotKey
from stratacache.metrics.stats import Stats, TierStats
from stratacache.tiers import MemoryTier, RedisTier, SQLiteTier, TierSpec

__version__ = "0.1.0"

__all__ = [
    "AccessLog",
    "AsyncCache",
    "Cache",
    "CacheClosedError",
    "Clock",
    "Codec",
    "CodecError",
    "ConfigError",
    "DecodeError",
    "EncodeError",
    "HotKey",
    "InvalidKeyError",
    "InvalidTTLError",
    "JsonCodec",
    "LoadPolicy",
    "LoadTimeout",
    "MemoryTier",
    "MsgpackCodec",
    "RedisTier",
    "SQLiteTier",
    "SerializationError",
    "SignatureError",
    "SignedPickleCodec",
    "Stats",
    "StrataCacheError",
    "TierError",
    "TierSpec",
    "TierStats",
    "TierTimeoutError",
    "TierUnavailableError",
    "ValueTooLargeError",
    "ZstdCodec",
    "__version__",
    "open",
]
