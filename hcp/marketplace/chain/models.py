"""Tables the chain indexer writes (schema owned by migration 0006_chain)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hcp.marketplace.models import TokenAmount
from hcp.store.models import Base, UtcDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class ChainEvent(Base):
    """One decoded contract log; (tx_hash, log_index) makes re-reading a block harmless."""

    __tablename__ = "chain_events"
    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    block_hash: Mapped[str] = mapped_column(String(66))
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    contract: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(64), index=True)
    job_key: Mapped[str | None] = mapped_column(String(66), index=True, nullable=True)
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    indexed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (UniqueConstraint("tx_hash", "log_index", name="uq_chain_events_log"),)


class ChainCursor(Base):
    """How far one indexer (one deployment) has read: survives restarts."""

    __tablename__ = "chain_cursor"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_block: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ChainBlock(Base):
    """Hashes of recent blocks read, to notice when the chain replaced them (re-org)."""

    __tablename__ = "chain_blocks"
    cursor: Mapped[str] = mapped_column(String(128), primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66))


class ChainJob(Base):
    """Projection of marketplace jobs and direct escrows, rebuilt from events after a re-org."""

    __tablename__ = "chain_jobs"
    job_key: Mapped[str] = mapped_column(String(66), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "job" | "escrow"
    user: Mapped[str] = mapped_column(String(42), index=True)
    provider: Mapped[str] = mapped_column(String(42), index=True)
    resource_id: Mapped[str | None] = mapped_column(String(66), nullable=True)
    image_cid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    locked: Mapped[int] = mapped_column(TokenAmount)
    paid_provider: Mapped[int] = mapped_column(TokenAmount)
    paid_platform: Mapped[int] = mapped_column(TokenAmount)
    refunded: Mapped[int] = mapped_column(TokenAmount)
    final_cost: Mapped[int | None] = mapped_column(TokenAmount, nullable=True)
    start_time: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    outcome: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_block: Mapped[int] = mapped_column(BigInteger)
