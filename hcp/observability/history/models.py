"""Tables of the store's own metrics history: one row per GPU and minute, one per GPU and hour.

The schema itself is owned by migration ``0018_metrics_history``. A row holds sums and peaks
(not averages) so minutes add up into hours and steps exactly; minutes are kept 2 days (the
day window's five-minute steps), hours 31 days (the 30-day window).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hcp.store.models import Base


class _Sums:
    facility: Mapped[str] = mapped_column(String(64))
    samples: Mapped[int] = mapped_column(Integer)
    power_sum: Mapped[float] = mapped_column(Float)
    power_max: Mapped[float] = mapped_column(Float)
    temperature_sum: Mapped[float] = mapped_column(Float)
    temperature_max: Mapped[float] = mapped_column(Float)
    utilization_sum: Mapped[float] = mapped_column(Float)
    hashrate_sum: Mapped[float] = mapped_column(Float)


class DeviceMinute(_Sums, Base):
    __tablename__ = "hist_device_minutes"
    # A facility's steps read by facility and time; retention deletes by time.
    __table_args__ = (Index("ix_hist_device_minutes_facility", "facility", "minute"),
                      Index("ix_hist_device_minutes_minute", "minute"))
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch minutes, UTC


class DeviceHour(_Sums, Base):
    __tablename__ = "hist_device_hours"
    __table_args__ = (Index("ix_hist_device_hours_facility", "facility", "hour"),
                      Index("ix_hist_device_hours_hour", "hour"))
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch hours, UTC
