"""Signing identities: the operator, and custodial accounts derived from a seed.

Accounts of the escrow ledger are names ("alice", "platform", or a 0x address). Each name
maps to a key derived as keccak256(seed || name), so a backend rebuilt from the same seed
after a crash signs for the same addresses without storing keys anywhere.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from hcp.errors import ConfigError


@dataclass(frozen=True)
class Signer:
    """Who sends a transaction: a local key, or an account the node keeps unlocked (dev chains)."""

    address: str
    account: LocalAccount | None = None

    @classmethod
    def from_key(cls, private_key: str | bytes) -> Signer:
        try:
            acct = Account.from_key(private_key)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"invalid private key: {exc}") from None
        return cls(address=acct.address, account=acct)

    @classmethod
    def unlocked(cls, address: str) -> Signer:
        return cls(address=to_checksum_address(address))


class KeyRing:
    """Deterministic custodial keys by account name."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) < 16:
            raise ConfigError("the wallet seed must be at least 16 bytes")
        self._seed = seed
        self._by_name: dict[str, Signer] = {}
        self._names: dict[str, str] = {}  # address -> name

    @classmethod
    def from_home(cls, home: Path, seed: str | None = None) -> KeyRing:
        """The configured seed, else a random one persisted in ``home/chain.seed``."""
        if seed:
            return cls(seed.encode())
        path = home / "chain.seed"
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return cls(path.read_text().strip().encode())

    def signer(self, name: str) -> Signer:
        found = self._by_name.get(name)
        if found is None:
            found = Signer.from_key(keccak(self._seed + b"\x00" + name.encode()))
            self._by_name[name] = found
            self._names[found.address] = name
        return found

    def address(self, name: str) -> str:
        return self.signer(name).address

    def name_of(self, address: str) -> str | None:
        return self._names.get(to_checksum_address(address))

    def known(self) -> dict[str, str]:
        """name -> address of every account derived so far."""
        return {n: s.address for n, s in self._by_name.items()}
