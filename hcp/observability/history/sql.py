"""The store's own metrics history: writes of ended minutes, retention, and the window reads."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from hcp.observability.history import models as m
from hcp.observability.history.recorder import MinuteRow
from hcp.observability.history.series import (
    History,
    HistoryPoint,
    HistorySource,
    Scope,
    Span,
    Window,
)
from hcp.store import models as fleet
from hcp.store.db import transaction

MINUTES_KEPT = timedelta(days=2)
HOURS_KEPT = timedelta(days=31)
_SUMS = ("samples", "power_sum", "temperature_sum", "utilization_sum", "hashrate_sum")
_PEAKS = ("power_max", "temperature_max")


class SqlHistory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)
        self._dialect = engine.dialect.name

    def _tx(self) -> AbstractContextManager[Session]:
        return transaction(self._session, "metrics history store")

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert(table) if self._dialect == "postgresql"
                else sqlite.insert(table))

    # -- writes --------------------------------------------------------------------------
    def write_minutes(self, rows: list[MinuteRow]) -> None:
        greatest = func.greatest if self._dialect == "postgresql" else func.max  # SQLite's 2-arg max
        with self._tx() as s:
            for r in rows:
                values = {"device_id": r.device_id, "facility": r.facility,
                          **{k: getattr(r, k) for k in _SUMS + _PEAKS}}
                added = s.execute(self._insert(m.DeviceMinute.__table__).values(
                    minute=r.minute, **values).on_conflict_do_nothing()).rowcount
                if not added:
                    continue  # written before (a retry after a lost reply): its hour has it
                ins = self._insert(m.DeviceHour.__table__).values(hour=r.minute // 60, **values)
                t = m.DeviceHour.__table__.c
                s.execute(ins.on_conflict_do_update(
                    index_elements=["device_id", "hour"],
                    set_={"facility": ins.excluded.facility,
                          **{k: t[k] + ins.excluded[k] for k in _SUMS},
                          **{k: greatest(t[k], ins.excluded[k]) for k in _PEAKS}}))

    def prune(self, device_id: str, now: datetime) -> int:
        minute = int((now - MINUTES_KEPT).timestamp()) // 60
        hour = int((now - HOURS_KEPT).timestamp()) // 3600
        with self._tx() as s:
            a = s.execute(delete(m.DeviceMinute).where(m.DeviceMinute.device_id == device_id,
                                                        m.DeviceMinute.minute < minute)).rowcount
            b = s.execute(delete(m.DeviceHour).where(m.DeviceHour.device_id == device_id,
                                                      m.DeviceHour.hour < hour)).rowcount
        return int(a or 0) + int(b or 0)

    # -- reads ---------------------------------------------------------------------------
    def exists(self, scope: Scope, subject: str) -> bool:
        """Whether the fleet has this GPU (or facility): history is asked of real subjects."""
        model: Any = fleet.Gpu if scope is Scope.DEVICE else fleet.Facility
        key = model.id if scope is Scope.DEVICE else model.name
        with self._tx() as s:
            return s.execute(select(key).where(key == subject)).first() is not None

    def history(self, scope: Scope, subject: str, window: Window, now: datetime) -> History:
        span = Span.of(window, now)
        # Hour rows for hourly steps, minute rows for the rest; ``unit``: one row's seconds.
        table: Any = m.DeviceHour if span.step >= 3600 else m.DeviceMinute
        unit = 3600 if table is m.DeviceHour else 60
        key = table.hour if table is m.DeviceHour else table.minute
        per_step = span.step // unit
        lo, hi = span.first_epoch // unit, int(span.end.timestamp()) // unit
        match = table.device_id if scope is Scope.DEVICE else table.facility
        bucket = (key // per_step).label("bucket")
        # First each device's own step (averages weighted by its sample count), then the
        # devices of a step together: the same two stages as the Prometheus reading.
        per_device = (
            select(bucket, table.device_id,
                   (func.sum(table.power_sum) / func.sum(table.samples)).label("power"),
                   func.max(table.power_max).label("power_max"),
                   (func.sum(table.temperature_sum) / func.sum(table.samples)).label("temp"),
                   func.max(table.temperature_max).label("temp_max"),
                   (func.sum(table.utilization_sum) / func.sum(table.samples)).label("util"),
                   (func.sum(table.hashrate_sum) / func.sum(table.samples)).label("hashrate"))
            .where(match == subject, key >= lo, key < hi)
            .group_by(bucket, table.device_id)
            .subquery())
        d = per_device.c
        steps = (select(d.bucket, func.count(), func.sum(d.power), func.sum(d.power_max),
                        func.avg(d.temp), func.max(d.temp_max), func.avg(d.util),
                        func.sum(d.hashrate))
                 .group_by(d.bucket))
        found: dict[int, HistoryPoint] = {}
        with self._tx() as s:
            for b, n, power, power_max, temp, temp_max, util, hashrate in s.execute(steps):
                i = span.index_of(int(b) * per_step * unit)
                if i is None:
                    continue
                found[i] = HistoryPoint(at=span.at(i), devices=int(n), power_w=_f(power),
                                        power_w_max=_f(power_max), temperature_c=_f(temp),
                                        temperature_c_max=_f(temp_max), utilization=_f(util),
                                        hashrate_hs=_f(hashrate))
        return History(scope=scope, subject=subject, window=window, step_seconds=span.step,
                       start=span.start, end=span.end, source=HistorySource.STORE,
                       points=span.dense(found))


def _f(v: Any) -> float | None:
    return None if v is None else float(v)
