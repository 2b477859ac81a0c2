"""Who signs what: the Ed25519 key of every provider and validator, in the platform's store.

``IdentityBook`` is the ``KeyRegistry`` the validators verify heartbeats and answers with,
and the one the agents verify challenges with. A provider's agent registers its own key when
it starts (in process, or through ``POST /api/v1/oracle/keys`` with its provider token);
registering again with another key is a rotation. The registration time is kept across
rotations: validators expect heartbeats from it on, and it names an outage that began before
the first heartbeat (``down:never:<registration ms>``) alike for every validator.

Reads are served from a snapshot refreshed every ``ttl_seconds`` (a validator verifies
thousands of heartbeats a second; a rotated key is seen within the ttl, a new identity at
once: a miss reads the store again, at most once a second).
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hcp.clock import Clock
from hcp.errors import IdentityConflictError, ValidationError
from hcp.oracle import models as m
from hcp.oracle.signing import PUBLIC_KEY_BYTES

MISS_REFRESH_S = 1.0


class Role(enum.StrEnum):
    PROVIDER = "provider"
    VALIDATOR = "validator"


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    identity: str
    role: Role
    public_key: bytes
    registered_at: datetime


class IdentityBook:
    def __init__(self, engine: Engine, clock: Clock, ttl_seconds: float = 5.0) -> None:
        self.engine = engine
        self.clock = clock
        self.ttl = ttl_seconds
        self._lock = threading.Lock()
        self._snapshot: dict[str, IdentityRecord] = {}
        self._loaded_at: float | None = None

    # -- writes ---------------------------------------------------------------------------
    def register(self, identity: str, role: Role, public_key: bytes) -> IdentityRecord:
        """Bind ``identity`` to ``public_key`` (a rotation when it had another key; a revoked
        identity comes back). Refused when the identity has the other role."""
        if not 1 <= len(identity) <= 128:
            raise ValidationError("an identity has 1..128 characters", field="identity")
        if len(public_key) != PUBLIC_KEY_BYTES:
            raise ValidationError("an Ed25519 public key is 32 bytes", field="public_key")
        now = self.clock.now()
        for _ in range(2):  # a concurrent first registration: read it, then rotate
            try:
                with Session(self.engine) as s, s.begin():
                    row = s.get(m.OrcIdentity, identity, with_for_update=True)
                    if row is None:
                        row = m.OrcIdentity(identity=identity, role=role.value,
                                            public_key=public_key.hex(), registered_at=now)
                        s.add(row)
                    elif row.role != role.value:
                        raise IdentityConflictError("this identity is registered with another "
                                                    "role", identity=identity, role=row.role)
                    elif row.public_key != public_key.hex() or row.revoked_at is not None:
                        row.public_key, row.rotated_at, row.revoked_at = public_key.hex(), now, None
                    rec = IdentityRecord(identity, role, public_key, row.registered_at)
                break
            except IntegrityError:
                continue
        else:
            raise IdentityConflictError("the identity is being registered concurrently",
                                        identity=identity)
        self.refresh()
        return rec

    def revoke(self, identity: str) -> bool:
        with Session(self.engine) as s, s.begin():
            res = s.execute(update(m.OrcIdentity).where(m.OrcIdentity.identity == identity,
                                                        m.OrcIdentity.revoked_at.is_(None))
                            .values(revoked_at=self.clock.now()))
        self.refresh()
        return bool(res.rowcount)  # type: ignore[attr-defined]

    # -- reads ----------------------------------------------------------------------------
    def refresh(self) -> None:
        q = select(m.OrcIdentity).where(m.OrcIdentity.revoked_at.is_(None))
        with Session(self.engine) as s:
            snap = {r.identity: IdentityRecord(r.identity, Role(r.role), bytes.fromhex(r.public_key),
                                               r.registered_at) for r in s.scalars(q)}
        with self._lock:
            self._snapshot, self._loaded_at = snap, self.clock.monotonic()

    def _current(self) -> dict[str, IdentityRecord]:
        loaded = self._loaded_at
        if loaded is None or self.clock.monotonic() - loaded >= self.ttl:
            self.refresh()
        return self._snapshot

    def record(self, identity: str) -> IdentityRecord | None:
        rec = self._current().get(identity)
        if rec is None and self.clock.monotonic() - (self._loaded_at or 0.0) >= MISS_REFRESH_S:
            # A key registered since the snapshot: read again now rather than refuse a new
            # provider's first heartbeats for a ttl (at most once a second, so a flood of
            # unknown names costs one query a second).
            self.refresh()
            rec = self._snapshot.get(identity)
        return rec

    def public_key(self, identity: str) -> bytes | None:
        rec = self.record(identity)
        return None if rec is None else rec.public_key

    def members(self, role: Role) -> dict[str, IdentityRecord]:
        return {i: r for i, r in self._current().items() if r.role is role}


class RoleRegistry:
    """One role's view of an ``IdentityBook``: a provider's key never verifies a challenge,
    a validator's never a heartbeat."""

    def __init__(self, book: IdentityBook, role: Role) -> None:
        self.book, self.role = book, role

    def public_key(self, identity: str) -> bytes | None:
        rec = self.book.record(identity)
        return rec.public_key if rec is not None and rec.role is self.role else None
