"""Codecs turn values into bytes at the edge: encode once per write, decode once per read."""

from stratacache.codecs.base import resolve_codec
from stratacache.codecs.json import JsonCodec
from stratacache.codecs.msgpack import MsgpackCodec
from stratacache.codecs.signed_pickle import SignedPickleCodec
from stratacache.codecs.zstd import ZstdCodec

__all__ = ["JsonCodec", "MsgpackCodec", "SignedPickleCodec", "ZstdCodec", "resolve_codec"]
