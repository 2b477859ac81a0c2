"""Tables of the optimizer: steps, issued decisions and their outcomes (all append-only).

The schema is owned by migration ``0002_optimizer``; database triggers refuse UPDATE and
DELETE on all three tables, so the record of what the optimizer decided and what happened
is evidence, like the fleet's event log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hcp.store.models import Base, UtcDateTime

# "2026-11-23T11:35:00.123456+00:00" (32) + ":" + a device id (63 at most).
DECISION_ID_LEN = 128


class OptimizerStep(Base):
    """One processed tick: its prices, the policy state after deciding, and the realized profit.

    ``tick_at`` is unique: a tick processed once is never processed again (a replayed feed after
    a restart yields the same ``tick_at`` and is skipped).
    """

    __tablename__ = "optimizer_steps"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    tick_at: Mapped[datetime] = mapped_column(UtcDateTime, unique=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    tick: Mapped[dict[str, Any]] = mapped_column(JSON)
    decisions: Mapped[int] = mapped_column(Integer)
    period_start: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    realized_profit_micro_usd: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    policy_state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class OptimizerDecision(Base):
    """A decision written as issued BEFORE it is sent; the primary key makes it sendable once."""

    __tablename__ = "optimizer_decisions"
    decision_id: Mapped[str] = mapped_column(String(DECISION_ID_LEN), primary_key=True)
    tick_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    facility: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    from_mode: Mapped[str] = mapped_column(String(16))
    to_mode: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    expected_gain_usd_per_hour: Mapped[float] = mapped_column(Float)
    # The device's committed generation when the decision was made: reconciliation compares
    # the device's committed record after it against the decision.
    issued_generation: Mapped[int] = mapped_column(Integer)


class OptimizerOutcome(Base):
    """What became of one issued decision (at most one outcome per decision)."""

    __tablename__ = "optimizer_outcomes"
    decision_id: Mapped[str] = mapped_column(
        String(DECISION_ID_LEN), ForeignKey("optimizer_decisions.decision_id"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    status: Mapped[str] = mapped_column(String(24))
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    generation: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # Unused since realized profit has its own table (OptimizerRealized): an outcome is
    # written when the decision is applied, before the period it governs has run.
    realized_profit_micro_usd: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class OptimizerRealized(Base):
    """What one decision's device earned over the period the decision governed (from its
    step to the next), written at the next step; append-only like the outcomes."""

    __tablename__ = "optimizer_realized"
    decision_id: Mapped[str] = mapped_column(
        String(DECISION_ID_LEN), ForeignKey("optimizer_decisions.decision_id"), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(UtcDateTime)
    period_end: Mapped[datetime] = mapped_column(UtcDateTime)
    realized_profit_micro_usd: Mapped[int] = mapped_column(BigInteger)
