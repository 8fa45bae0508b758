"""Pickle, opt-in and signed: HMAC-SHA256 over key id, cache key, codec id and payload, checked before loading.

Unsigned pickle read from a shared store is remote code execution for whoever can write the store. This codec
refuses to exist without a secret, verifies with :func:`hmac.compare_digest` before ``pickle.loads`` ever sees the
bytes, binds the signature to the cache key (a value cannot be moved to another key) and carries a key id so that
secrets can be rotated: sign with the current key, accept any configured key.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from typing import TYPE_CHECKING, Any

from stratacache.errors import ConfigError, DecodeError, EncodeError, SignatureError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SignedPickleCodec"]

_MAC_LEN = 32
_FORMAT = 1


class SignedPickleCodec:
    """Pickle with HMAC-SHA256 signatures and key rotation.

    Args:
        secret: one secret (``str``/``bytes``, at least 16 bytes) or a mapping of key id to secret.
        current: the key id used to sign new values (required when ``secret`` is a mapping of several keys).
        protocol: pickle protocol used for new values.
    """

    __slots__ = ("_current", "_keys", "_protocol")
    id = 3
    name = "pickle"

    def __init__(
        self,
        secret: str | bytes | Mapping[str, str | bytes],
        *,
        current: str | None = None,
        protocol: int = pickle.HIGHEST_PROTOCOL,
    ) -> None:
        raw = {"default": secret} if isinstance(secret, str | bytes) else dict(secret)
        if not raw:
            raise ConfigError("SignedPickleCodec needs at least one secret")
        keys: dict[str, bytes] = {}
        for kid, value in raw.items():
            if not isinstance(kid, str) or not kid or len(kid.encode()) > 255:
                raise ConfigError(f"invalid signing key id {kid!r}")
            b = value.encode() if isinstance(value, str) else value
            if not isinstance(b, bytes) or len(b) < 16:
                raise ConfigError(f"signing key {kid!r} must be at least 16 bytes")
            keys[kid] = b
        if current is None:
            if len(keys) != 1:
                raise ConfigError("several signing keys given: name the one to sign with (current=...)")
            current = next(iter(keys))
        if current not in keys:
            raise ConfigError(f"current signing key id {current!r} is not among the keys")
        self._keys = keys
        self._current = current
        self._protocol = protocol

    @classmethod
    def from_env_value(cls, value: str) -> SignedPickleCodec:
        """Build from ``secret`` or ``id1:secret1,id2:secret2`` (the first id signs)."""
        if ":" not in value:
            return cls(value)
        pairs = [p.split(":", 1) for p in value.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ConfigError("signing keys must look like 'id1:secret1,id2:secret2'")
        return cls({k.strip(): v for k, v in pairs}, current=pairs[0][0].strip())

    def _mac(self, secret: bytes, kid: bytes, key: str, payload: bytes) -> bytes:
        h = hmac.new(secret, digestmod=hashlib.sha256)
        h.update(bytes([_FORMAT, self.id, len(kid)]))
        h.update(kid)
        kb = key.encode("utf-8", "surrogatepass")
        h.update(len(kb).to_bytes(4, "big"))
        h.update(kb)
        h.update(payload)
        return h.digest()

    def encode(self, value: Any, key: str) -> bytes:
        """Pickle and sign ``value`` for ``key``.

        Raises:
            EncodeError: the value cannot be pickled.
        """
        try:
            payload = pickle.dumps(value, protocol=self._protocol)
        except Exception as exc:
            raise EncodeError(f"cannot pickle value: {exc}") from exc
        kid = self._current.encode()
        mac = self._mac(self._keys[self._current], kid, key, payload)
        return bytes([_FORMAT, len(kid)]) + kid + mac + payload

    def decode(self, data: bytes, key: str) -> Any:
        """Verify, then unpickle.

        Raises:
            SignatureError: unknown key id or a signature mismatch (the payload is never unpickled).
            DecodeError: truncated data, or a payload that fails to unpickle after a valid signature.
        """
        if len(data) < 2 or data[0] != _FORMAT:
            raise DecodeError("not a signed pickle payload")
        klen = data[1]
        head = 2 + klen + _MAC_LEN
        if len(data) < head:
            raise DecodeError("truncated signed pickle payload")
        kid = bytes(data[2 : 2 + klen])
        secret = self._keys.get(kid.decode("utf-8", "replace"))
        if secret is None:
            raise SignatureError("payload signed with an unknown key id")
        mac = bytes(data[2 + klen : head])
        payload = bytes(data[head:])
        if not hmac.compare_digest(mac, self._mac(secret, kid, key, payload)):
            raise SignatureError("bad signature on pickle payload")
        try:
            return pickle.loads(payload)  # noqa: S301 - verified by HMAC above
        except Exception as exc:
            raise DecodeError(f"cannot unpickle payload: {exc}") from exc
