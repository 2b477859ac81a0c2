"""Tables of the marketplace: offers, jobs, disputes, reputation, the double-entry ledger, wallet nonces.

The schema itself is owned by migrations ``0005_marketplace`` and ``0011_stake``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from hcp.store.models import Base, UtcDateTime

AMOUNT_DIGITS = 78  # a uint256 has at most 78 decimal digits


class TokenAmount(TypeDecorator[int]):
    """A non-negative integer up to 2**256 - 1, exact on every backend.

    18-decimal token units overflow BIGINT (10 tokens > 2**63), and SQLite turns larger
    integers into REAL. PostgreSQL gets NUMERIC(78, 0); elsewhere the value is stored as
    zero-padded text, whose order is the numeric order, so range filters and ORDER BY on
    prices stay correct and indexable.
    """

    impl = String(AMOUNT_DIGITS)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(AMOUNT_DIGITS, 0, asdecimal=True))
        return dialect.type_descriptor(String(AMOUNT_DIGITS))

    def process_bind_param(self, value: int | None, dialect: Any) -> Any:
        if value is None:
            return None
        value = int(value)
        if value < 0 or value >= 10**AMOUNT_DIGITS:
            raise ValueError(f"token amount out of range: {value}")
        if dialect.name == "postgresql":
            return Decimal(value)
        return str(value).zfill(AMOUNT_DIGITS)

    def process_result_value(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        return int(value)


_ID = BigInteger().with_variant(Integer, "sqlite")


class Offer(Base):
    __tablename__ = "mk_offers"
    # Keyset pages of the common searches, as migration 0005 built them: (filters..., sort, id).
    __table_args__ = (
        Index("ix_mk_offers_price", "available", "price_per_hour", "id"),
        Index("ix_mk_offers_model_price", "available", "gpu_model", "price_per_hour", "id"),
        Index("ix_mk_offers_reputation", "available", "reputation", "id"),
        Index("ix_mk_offers_location", "location"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    provider: Mapped[str] = mapped_column(String(128), index=True)
    gpu_model: Mapped[str] = mapped_column(String(64))
    vcpu: Mapped[int] = mapped_column(Integer)
    memory_gb: Mapped[int] = mapped_column(Integer)
    storage_gb: Mapped[int] = mapped_column(Integer)
    price_per_hour: Mapped[int] = mapped_column(TokenAmount)
    location: Mapped[str] = mapped_column(String(64))
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    # The provider's score, copied here so "min reputation" is an indexed filter, not a join.
    reputation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Job(Base):
    __tablename__ = "mk_jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("mk_offers.id"), index=True)
    renter: Mapped[str] = mapped_column(String(128), index=True)
    provider: Mapped[str] = mapped_column(String(128), index=True)
    image_cid: Mapped[str] = mapped_column(String(128))
    price_per_hour: Mapped[int] = mapped_column(TokenAmount)
    estimated_seconds: Mapped[int] = mapped_column(BigInteger)
    max_cost: Mapped[int] = mapped_column(TokenAmount)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    final_cost: Mapped[int | None] = mapped_column(TokenAmount, nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The escrow step this job still owes the ledger ("lock", "release", ...): set in the same
    # transaction as the status change, cleared once the (idempotent) ledger call returned, and
    # replayed by ``MarketplaceService.reconcile`` after a crash in between.
    # none_as_null: "nothing owed" must be SQL NULL (JSON 'null' would match IS NOT NULL).
    pending_escrow: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class JobEvent(Base):
    __tablename__ = "mk_job_events"
    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("mk_jobs.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    __table_args__ = (UniqueConstraint("job_id", "seq", name="uq_mk_job_events_seq"),)


class Dispute(Base):
    __tablename__ = "mk_disputes"
    job_id: Mapped[str] = mapped_column(ForeignKey("mk_jobs.id"), primary_key=True)
    initiator: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(1000))
    from_status: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Reputation(Base):
    __tablename__ = "mk_reputation"
    provider: Mapped[str] = mapped_column(String(128), primary_key=True)
    total_jobs: Mapped[int] = mapped_column(Integer, default=0)
    completed_jobs: Mapped[int] = mapped_column(Integer, default=0)
    disputes: Mapped[int] = mapped_column(Integer, default=0)
    accepted_jobs: Mapped[int] = mapped_column(Integer, default=0)
    response_seconds_total: Mapped[int] = mapped_column(BigInteger, default=0)
    uptime_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    expected_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    penalty: Mapped[int] = mapped_column(Integer, default=0)
    bonus: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    name: Mapped[str] = mapped_column(String(160), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # user | escrow | issuance
    # Signed balances do not fit TokenAmount; the issuance account is kept positive as
    # "issued" and counts as a debit (see sql_ledger).
    balance: Mapped[int] = mapped_column(TokenAmount)


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"
    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    op_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class LedgerEntry(Base):
    """One leg of a transaction: ``amount`` leaves ``debit`` and enters ``credit``.

    Storing each movement as a (debit, credit, amount) pair makes every transaction sum to
    zero by construction; ``verify_books`` re-derives every balance from these rows.
    """

    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    tx_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    debit: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.name"), index=True)
    credit: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.name"), index=True)
    amount: Mapped[int] = mapped_column(TokenAmount)


class LedgerEscrow(Base):
    __tablename__ = "ledger_escrows"
    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    renter: Mapped[str] = mapped_column(String(160))
    provider: Mapped[str] = mapped_column(String(160))
    locked: Mapped[int] = mapped_column(TokenAmount)  # the original lock
    remaining: Mapped[int] = mapped_column(TokenAmount)
    paid: Mapped[int] = mapped_column(TokenAmount)  # provider + platform so far
    refunded: Mapped[int] = mapped_column(TokenAmount)
    state: Mapped[str] = mapped_column(String(16))


class LedgerStake(Base):
    """One provider's stake; its account ``stake:<provider>`` holds bonded + unbonding
    (migration ``0011_stake``)."""

    __tablename__ = "ledger_stakes"
    provider: Mapped[str] = mapped_column(String(160), primary_key=True)
    bonded: Mapped[int] = mapped_column(TokenAmount)
    unbonding: Mapped[int] = mapped_column(TokenAmount)
    release_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class WalletNonce(Base):
    __tablename__ = "mk_wallet_nonces"
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    role: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(String(2000))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
