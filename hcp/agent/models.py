"""Tables of the provider agent: instance specs, runs, log lines, metric samples.

The schema itself is owned by migration ``0013_agent``. Log lines and metric samples are
evidence for disputes: the database refuses to update or delete them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hcp.store.models import Base, UtcDateTime


class Instance(Base):
    __tablename__ = "ag_instances"
    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    renter: Mapped[str] = mapped_column(String(128), index=True)
    network: Mapped[str] = mapped_column(String(8))
    command: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    env: Mapped[dict[str, str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Run(Base):
    __tablename__ = "ag_runs"
    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    provider: Mapped[str] = mapped_column(String(128))
    gpu_id: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(16))
    container_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    image_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    oom_killed: Mapped[bool] = mapped_column(Boolean, default=False)
    simulated_gpu: Mapped[bool] = mapped_column(Boolean, default=False)
    network: Mapped[str] = mapped_column(String(8))
    container_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    container_finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    usage_seconds: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LogRow(Base):
    __tablename__ = "ag_log_lines"
    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    stream: Mapped[str] = mapped_column(String(6))
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    partial: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_ag_log_lines_ts", "job_id", "ts_ns"),)


class MetricRow(Base):
    __tablename__ = "ag_metric_samples"
    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    cpu_pct: Mapped[float] = mapped_column(Float)
    mem_bytes: Mapped[int] = mapped_column(BigInteger)
    mem_limit_bytes: Mapped[int] = mapped_column(BigInteger)
    pids: Mapped[int] = mapped_column(Integer)
    gpu: Mapped[dict[str, Any]] = mapped_column(JSON)
