"""Replay protection: a nonce is accepted once.

Two layers, as ML-Chain v6 requires: a fast store with a TTL (Redis ``SET NX EX`` in
production; a SQL table in the embedded default) and the permanent UNIQUE nonce of the claims
ledger, which the pipeline checks too, so a replay after the TTL still fails. Both stores fail
closed: if they cannot answer, the claim is refused with 503.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from hcp.errors import NonceStoreUnavailableError
from hcp.notary.models import Nonce

log = logging.getLogger(__name__)


class NonceStore(Protocol):
    def claim(self, nonce: str, now: datetime, ttl_seconds: int) -> bool:
        """True if ``nonce`` was unseen (and is now taken); False if it was seen."""
        ...

    def release(self, nonce: str) -> None:
        """Forget a nonce whose claim was never processed (our capacity, not the miner's fault)."""
        ...


class SqlNonceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, nonce: str, now: datetime, ttl_seconds: int) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(Nonce).values(nonce=nonce, seen_at=now,
                                                  expires_at=now + timedelta(seconds=ttl_seconds)))
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise NonceStoreUnavailableError(f"nonce store unavailable: {exc}") from exc
        return True

    def release(self, nonce: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(Nonce).where(Nonce.nonce == nonce))
        except SQLAlchemyError as exc:
            log.warning("could not release nonce %s: %s", nonce, exc)


class RedisNonceStore:
    def __init__(self, client: Any, prefix: str = "hcp:nonce:") -> None:
        self.client = client
        self.prefix = prefix

    def claim(self, nonce: str, now: datetime, ttl_seconds: int) -> bool:
        import redis

        try:
            return bool(self.client.set(self.prefix + nonce, "1", nx=True, ex=ttl_seconds))
        except redis.RedisError as exc:
            raise NonceStoreUnavailableError(f"nonce store (Redis) unavailable: {exc}") from exc

    def release(self, nonce: str) -> None:
        import redis

        try:
            self.client.delete(self.prefix + nonce)
        except redis.RedisError as exc:
            log.warning("could not release nonce %s: %s", nonce, exc)
