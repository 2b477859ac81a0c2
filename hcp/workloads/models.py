"""Table of the workloads area; the schema itself is owned by migrations 0003 and 0008."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hcp.store.models import Base, UtcDateTime


class WorkloadRow(Base):
    __tablename__ = "workloads"
    # As migrations 0003 and 0008 built them: an owner's page in admission order, and one
    # submission per (owner, Idempotency-Key) (NULL keys are distinct on both backends).
    __table_args__ = (
        Index("ix_workloads_owner_seq", "owner", "seq"),
        Index("uq_workloads_owner_idempotency_key", "owner", "idempotency_key", unique=True),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Admission order: FIFO inside a priority after a restart, and the pagination cursor.
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    owner: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    type: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    requirements: Mapped[dict[str, Any]] = mapped_column(JSON)
    sla: Mapped[dict[str, Any]] = mapped_column(JSON)
    interruptible: Mapped[bool] = mapped_column(Boolean)
    duration_seconds: Mapped[int] = mapped_column(Integer)
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    scheduled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Metered GPU time of finished run segments and its cost; set in the same transaction as the
    # state change that ends a segment, so a restart can neither lose nor repeat it.
    gpu_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    preempted_mining: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The client's Idempotency-Key (migration 0008): unique per owner, so a retried
    # submission finds the workload its first attempt created.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Batch and training work in a container (migration 0016): {"image_cid", "command"}; the
    # platform's agent runs it on the workload's GPU.
    container: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # When that container started in the current run segment (migration 0019): metering of a
    # container workload starts there, not at its placement (the image pull is not billed).
    container_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
