"""Tables of the notary ledger (schema owned by migration 0004_notary)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hcp.store.models import Base, UtcDateTime

_BIGID = BigInteger().with_variant(Integer, "sqlite")


class MinerKey(Base):
    """A registered miner: its Ed25519 key, stake and running balance (integer units)."""

    __tablename__ = "miner_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))  # hex, 32 bytes
    stake: Mapped[int] = mapped_column(BigInteger)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    slashed_total: Mapped[int] = mapped_column(BigInteger, default=0)
    warnings: Mapped[int] = mapped_column(Integer, default=0)
    slashes: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # active | revoked
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class NotaryTask(Base):
    __tablename__ = "notary_tasks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64))
    performance_threshold: Mapped[float] = mapped_column(Float)
    dataset_hash: Mapped[str] = mapped_column(String(71))
    max_training_time_seconds: Mapped[float] = mapped_column(Float)
    reward: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))  # active | closed


class Claim(Base):
    """One authenticated, fresh claim that reached the sandbox, verified or not."""

    __tablename__ = "notary_claims"
    submission_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    miner_id: Mapped[str] = mapped_column(ForeignKey("miner_keys.id"), index=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("notary_tasks.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # verified | rejected
    claimed_score: Mapped[float] = mapped_column(Float)
    verified_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))
    details: Mapped[str | None] = mapped_column(Text, nullable=True)
    artifact_hash: Mapped[str] = mapped_column(String(71), index=True)
    artifact_uri: Mapped[str] = mapped_column(String(500))
    signature: Mapped[str] = mapped_column(String(128))
    payload_timestamp: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(36), unique=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    verification_seconds: Mapped[float] = mapped_column(Float)
    duplicate_of: Mapped[str | None] = mapped_column(String(36), nullable=True)
    reward: Mapped[int] = mapped_column(BigInteger, default=0)
    slashed: Mapped[int] = mapped_column(BigInteger, default=0)
    warning: Mapped[bool] = mapped_column(Integer, default=0)


class FirstFinder(Base):
    """The first verified claim of each artifact hash: the only one rewarded."""

    __tablename__ = "notary_first_finders"
    artifact_hash: Mapped[str] = mapped_column(String(71), primary_key=True)
    submission_id: Mapped[str] = mapped_column(String(36))


class Nonce(Base):
    """Seen nonces of the embedded (SQL) replay store; production keeps them in Redis."""

    __tablename__ = "notary_nonces"
    nonce: Mapped[str] = mapped_column(String(36), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class StakeEntry(Base):
    """Append-only record of every stake and balance movement of a miner."""

    __tablename__ = "notary_stake_entries"
    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    miner_id: Mapped[str] = mapped_column(ForeignKey("miner_keys.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # stake | reward | slash | warning
    amount: Mapped[int] = mapped_column(BigInteger)
    submission_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (UniqueConstraint("submission_id", "kind", name="uq_stake_entry_claim_kind"),)
