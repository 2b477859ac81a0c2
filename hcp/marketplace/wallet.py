"""Wallet login: an EIP-4361 ("Sign-In with Ethereum") message signed per EIP-191 (``personal_sign``).

1. ``challenge(address, role)`` stores a fresh single-use nonce with an expiry and returns the
   exact text to sign. 2. ``login(address, nonce, signature)`` rebuilds nothing from the client:
   it recovers the signer of the stored text with ``eth-account``, checks it is the address,
   consumes the nonce (an UPDATE that succeeds once), and issues a JWT whose subject is the
   checksummed address and whose role is customer (renter) or provider.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_address, to_checksum_address
from sqlalchemy import Engine, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from hcp.auth.tokens import Role, TokenService
from hcp.clock import Clock, SystemClock
from hcp.config import Settings
from hcp.errors import StoreError, ValidationError, WalletAuthError
from hcp.marketplace import models as m

log = logging.getLogger(__name__)

WALLET_ROLES = {"renter": Role.CUSTOMER, "customer": Role.CUSTOMER, "provider": Role.PROVIDER}


@dataclass(frozen=True)
class Challenge:
    address: str
    role: Role
    nonce: str
    message: str
    expires_at: datetime


@dataclass(frozen=True)
class WalletSession:
    token: str
    subject: str
    role: Role


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def siwe_message(domain: str, address: str, role: Role, chain_id: int, nonce: str,
                 issued_at: datetime, expires_at: datetime) -> str:
    return (
        f"{domain} wants you to sign in with your Ethereum account:\n{address}\n\n"
        f"Sign in to the hcp marketplace as {role.value}.\n\n"
        f"URI: https://{domain}\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\n"
        f"Issued At: {_iso(issued_at)}\nExpiration Time: {_iso(expires_at)}"
    )


def checksum(address: str) -> str:
    if not isinstance(address, str) or not is_address(address):
        raise ValidationError("not an Ethereum address", address=str(address)[:64])
    return to_checksum_address(address)


class WalletLogin:
    def __init__(self, engine: Engine, tokens: TokenService, settings: Settings,
                 clock: Clock | None = None) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)
        self.tokens = tokens
        self.settings = settings
        self.clock = clock or SystemClock()

    def challenge(self, address: str, role: str) -> Challenge:
        addr = checksum(address)
        try:
            wallet_role = WALLET_ROLES[str(role).lower()]
        except KeyError:
            raise ValidationError("role must be renter (customer) or provider", role=role) from None
        now = self.clock.now()
        expires = now + timedelta(seconds=self.settings.marketplace.login_ttl_seconds)
        nonce = secrets.token_hex(16)
        text = siwe_message(self.settings.marketplace.login_domain, addr, wallet_role,
                            self.settings.marketplace.chain_id, nonce, now, expires)
        try:
            with self._session.begin() as s:
                s.add(m.WalletNonce(nonce=nonce, address=addr, role=wallet_role.value, message=text,
                                    issued_at=now, expires_at=expires))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot store the login challenge: {exc}") from exc
        return Challenge(address=addr, role=wallet_role, nonce=nonce, message=text, expires_at=expires)

    def login(self, address: str, nonce: str, signature: str) -> WalletSession:
        addr = checksum(address)
        now = self.clock.now()
        try:
            with self._session.begin() as s:
                row = s.get(m.WalletNonce, nonce) if isinstance(nonce, str) else None
                if row is None or row.address != addr:
                    raise WalletAuthError("unknown login challenge for this address")
                if row.used_at is not None:
                    raise WalletAuthError("login challenge already used")
                if row.expires_at <= now:
                    raise WalletAuthError("login challenge expired", expired_at=_iso(row.expires_at))
                try:
                    signer = Account.recover_message(encode_defunct(text=row.message), signature=signature)
                except Exception as exc:  # malformed signatures raise several eth-keys/ValueError types
                    raise WalletAuthError(f"unreadable signature: {type(exc).__name__}") from exc
                if to_checksum_address(signer) != addr:
                    raise WalletAuthError("the signature is not from this address")
                # Single use even under concurrent logins: only one UPDATE finds used_at NULL.
                done = s.execute(update(m.WalletNonce).where(m.WalletNonce.nonce == nonce,
                                                             m.WalletNonce.used_at.is_(None))
                                 .values(used_at=now))
                if done.rowcount != 1:
                    raise WalletAuthError("login challenge already used")
                role = Role(row.role)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot consume the login challenge: {exc}") from exc
        log.info("wallet login of %s as %s", addr, role.value)
        return WalletSession(token=self.tokens.issue(addr, role), subject=addr, role=role)
