"""Tables of the fleet store. The schema itself is owned by the Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from hcp.clock import utcnow


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; hcp stores UTC-aware times only")
        from datetime import timezone

        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        from datetime import timezone

        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class Facility(Base):
    __tablename__ = "facilities"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    location: Mapped[str] = mapped_column(String(200))
    capacity_mw: Mapped[float] = mapped_column(Float)
    pue: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Gpu(Base):
    __tablename__ = "gpus"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    facility: Mapped[str] = mapped_column(ForeignKey("facilities.name"), index=True)
    model: Mapped[str] = mapped_column(String(64))
    memory_gb: Mapped[float] = mapped_column(Float)
    power_w: Mapped[float] = mapped_column(Float)
    device_index: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Asic(Base):
    __tablename__ = "asics"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    facility: Mapped[str] = mapped_column(ForeignKey("facilities.name"), index=True)
    model: Mapped[str] = mapped_column(String(64))
    hashrate_ths: Mapped[float] = mapped_column(Float)
    power_w: Mapped[float] = mapped_column(Float)


class DeviceState(Base):
    """Last committed mode and counters of a device: what a restarted actor comes back to."""

    __tablename__ = "device_state"
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "gpu" | "asic"
    mode: Mapped[str] = mapped_column(String(16))
    mode_since: Mapped[datetime] = mapped_column(UtcDateTime)
    # Bumped by every committed mode change; equals the number of mode_change events.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    hashes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    inference_requests: Mapped[int] = mapped_column(BigInteger, default=0)
    mining_state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Who holds the device (hcp.fleet.holds, "job:<id>" or "workload:<id>"); only the holder
    # may change its mode. Committed with the mode change that took or gave it back.
    held_by: Mapped[str | None] = mapped_column(String(128), nullable=True)


class Event(Base):
    """Append-only event log (database triggers refuse UPDATE and DELETE)."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    device_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    facility: Mapped[str | None] = mapped_column(String(64), nullable=True)
    from_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    generation: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    pause_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    save_state_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    activate_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    health_check_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The decision or request this entry answers (an optimizer decision id, a workload id).
    correlation_id: Mapped[str | None] = mapped_column(String(128), index=True, nullable=True)
    __table_args__ = (UniqueConstraint("device_id", "kind", "generation", name="uq_events_device_generation"),)


class Share(Base):
    """Shares found by the mining context; the unique key makes re-found shares after a restart count once."""

    __tablename__ = "shares"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    job_id: Mapped[str] = mapped_column(String(64))
    extranonce: Mapped[int] = mapped_column(BigInteger)
    nonce: Mapped[int] = mapped_column(BigInteger)
    hash_hex: Mapped[str] = mapped_column(String(64))
    difficulty: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (UniqueConstraint("job_id", "extranonce", "nonce", name="uq_shares_work"),)
