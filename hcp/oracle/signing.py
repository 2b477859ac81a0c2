"""Ed25519 identities of providers and validators, and the registry that binds each identity
(a provider or validator id) to its one public key.

The registry is a Protocol so the validators can read keys from wherever the platform keeps
them (the provider agent's registration, the chain's ResourceRegistry); ``KeyRing`` is the
in-process one, with rotation and revocation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

import nacl.exceptions
import nacl.signing

from hcp.oracle.wire import signing_bytes

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


class KeyRegistry(Protocol):
    def public_key(self, identity: str) -> bytes | None:
        """The 32-byte Ed25519 key registered for ``identity``; None if none (or revoked)."""
        ...


@dataclass(frozen=True)
class Signer:
    """An identity and its private key: what an agent or a validator signs with."""

    identity: str
    key: nacl.signing.SigningKey

    @classmethod
    def generate(cls, identity: str) -> Signer:
        return cls(identity, nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, identity: str, seed: bytes) -> Signer:
        return cls(identity, nacl.signing.SigningKey(seed))

    @property
    def public_key(self) -> bytes:
        return self.key.verify_key.encode()

    def sign(self, domain: str, body: dict[str, Any]) -> bytes:
        return self.key.sign(signing_bytes(domain, body)).signature


class KeyRing:
    """Identity -> public key, in memory. Thread-safe; verify keys are built once per key."""

    def __init__(self, keys: dict[str, bytes] | None = None) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        for identity, key in (keys or {}).items():
            self.register(identity, key)

    def register(self, identity: str, public_key: bytes) -> None:
        """Bind ``identity`` to ``public_key`` (replacing, i.e. rotating, any earlier key)."""
        if len(public_key) != PUBLIC_KEY_BYTES:
            raise ValueError("an Ed25519 public key is 32 bytes")
        with self._lock:
            self._keys[identity] = bytes(public_key)

    def revoke(self, identity: str) -> None:
        with self._lock:
            self._keys.pop(identity, None)

    def public_key(self, identity: str) -> bytes | None:
        return self._keys.get(identity)

    def identities(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._keys)


class Verifier:
    """Checks signatures against a registry, caching PyNaCl's verify key per public key."""

    def __init__(self, registry: KeyRegistry) -> None:
        self.registry = registry
        self._cache: dict[bytes, nacl.signing.VerifyKey] = {}

    def known(self, identity: str) -> bool:
        return self.registry.public_key(identity) is not None

    def verify(self, identity: str, domain: str, body: dict[str, Any], signature: bytes) -> bool:
        """True when ``signature`` is ``identity``'s registered key's over ``body``."""
        key = self.registry.public_key(identity)
        if key is None or len(signature) != SIGNATURE_BYTES:
            return False
        vk = self._cache.get(key)
        if vk is None:
            if len(self._cache) > 100_000:
                self._cache.clear()
            vk = self._cache[key] = nacl.signing.VerifyKey(key)
        try:
            vk.verify(signing_bytes(domain, body, check=False), signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
            return False
        return True
