"""The store's own metrics history: minutes written once and added into hours, the three
windows read back as dense steps, facilities as their GPUs together, retention, and the
history API over it (the unit tier has no Prometheus; tests/integration/ops reads the same
answers from a real one)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from hcp.auth.tokens import Role
from hcp.errors import HistoryUnavailableError, StoreError
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import parse_fleet_spec
from hcp.observability.history import (
    HistoryRecorder,
    HistoryService,
    HistorySource,
    MinuteRow,
    PrometheusHistory,
    Scope,
    SqlHistory,
    Window,
)
from hcp.observability.history import models as m
from hcp.observability.history.prometheus import promql
from hcp.store import connect, migrate
from tests.unit.api.support import SPEC, FixedClock, Harness, make_harness

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # a minute and an hour boundary


def clock_at(t: datetime) -> FixedClock:
    clock = FixedClock()
    clock.t = t
    return clock


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    from tests.conftest import migrated_sqlite_url

    eng = connect(migrated_sqlite_url(tmp_path, "history.db"))
    migrate(eng)
    FleetRepository(eng).sync_fleet(parse_fleet_spec(SPEC, "unit"))
    return eng


def feed(rec: HistoryRecorder, start: datetime, seconds: int, every: int = 5,
         power: Any = 300.0, temp: float = 60.0, util: float = 0.5, hashrate: float = 1e6) -> None:
    """A sample every ``every`` seconds from ``start`` (power may be a function of the offset)."""
    for off in range(0, seconds, every):
        p = power(off) if callable(power) else power
        rec.add(start + timedelta(seconds=off), p, temp, util, hashrate)


def test_a_minute_is_written_when_it_ends_and_a_retry_counts_nothing_twice(engine: Engine) -> None:
    store = SqlHistory(engine)
    rec = HistoryRecorder("g0", "lab", store, clock_at(T0))
    feed(rec, T0, 60, power=lambda off: 100.0 + off)  # 12 samples: 100, 105, ... 155
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(m.DeviceMinute)).scalar() == 0  # still open
    rec.add(T0 + timedelta(seconds=60), 999.0, 60.0, 0.5, 1e6)  # the next minute closes it
    with engine.connect() as c:
        row = c.execute(select(m.DeviceMinute.__table__)).one()._mapping
    assert (row["minute"], row["samples"]) == (int(T0.timestamp()) // 60, 12)
    assert row["power_sum"] == sum(100.0 + 5 * i for i in range(12))
    assert row["power_max"] == 155.0
    again = MinuteRow("g0", "lab", row["minute"], samples=12, power_sum=row["power_sum"],
                      power_max=155.0, temperature_sum=720.0, temperature_max=60.0,
                      utilization_sum=6.0, hashrate_sum=12e6)
    store.write_minutes([again])  # a lost reply's retry
    with engine.connect() as c:
        hour = c.execute(select(m.DeviceHour.__table__)).one()._mapping
    assert (hour["samples"], hour["power_sum"]) == (12, row["power_sum"])


def test_the_hour_window_reads_one_step_a_minute_with_gaps_left_empty(engine: Engine) -> None:
    clock = clock_at(T0)
    rec = HistoryRecorder("g0", "lab", SqlHistory(engine), clock)
    feed(rec, T0, 120, power=lambda off: 200.0 if off < 60 else 400.0, temp=70.0)
    feed(rec, T0 + timedelta(minutes=5), 65)  # minute 5 written, minute 6 still open
    clock.t = T0 + timedelta(minutes=6, seconds=30)
    h = HistoryService(SqlHistory(engine), None, "store", clock).history(
        Scope.DEVICE, "g0", Window.HOUR)
    assert (h.source, h.step_seconds, len(h.points)) == (HistorySource.STORE, 60, 60)
    assert h.end == T0 + timedelta(minutes=7) and h.start == h.end - timedelta(hours=1)
    by_at = {p.at: p for p in h.points}
    first, second = by_at[T0], by_at[T0 + timedelta(minutes=1)]
    assert (first.devices, first.power_w, first.power_w_max, first.temperature_c) == (1, 200.0, 200.0, 70.0)
    assert (second.power_w, second.utilization, second.hashrate_hs) == (400.0, 0.5, 1e6)
    assert by_at[T0 + timedelta(minutes=5)].power_w == 300.0
    gap = by_at[T0 + timedelta(minutes=3)]
    assert gap.devices == 0 and gap.power_w is None and gap.temperature_c_max is None
    assert [p.at for p in h.points] == sorted(by_at)


def test_a_facility_is_its_gpus_together(engine: Engine) -> None:
    clock = clock_at(T0)
    store = SqlHistory(engine)
    feed(HistoryRecorder("g0", "lab", store, clock), T0, 65, power=300.0, temp=60.0, util=0.2)
    feed(HistoryRecorder("g1", "lab", store, clock), T0, 65, power=150.0, temp=80.0, util=0.6,
         hashrate=0.0)
    clock.t = T0 + timedelta(minutes=2)
    point = next(p for p in store.history(Scope.FACILITY, "lab", Window.HOUR, clock.t).points
                 if p.at == T0)
    assert point.devices == 2
    assert point.power_w == 450.0 and point.power_w_max == 450.0
    assert point.temperature_c == 70.0 and point.temperature_c_max == 80.0
    assert math.isclose(point.utilization or 0, 0.4) and point.hashrate_hs == 1e6


def test_the_day_window_steps_five_minutes_and_thirty_days_steps_hours(engine: Engine) -> None:
    clock = clock_at(T0)
    store = SqlHistory(engine)
    rec = HistoryRecorder("g0", "lab", store, clock)
    # Ten minutes at 100 W then ten at 300 W, one sample a minute.
    for i in range(21):
        rec.add(T0 + timedelta(minutes=i), 100.0 if i < 10 else 300.0, 50.0, 0.5, 0.0)
    clock.t = T0 + timedelta(minutes=30)
    day = store.history(Scope.DEVICE, "g0", Window.DAY, clock.t)
    assert (day.step_seconds, len(day.points)) == (300, 288)
    steps = {p.at: p.power_w for p in day.points if p.devices}
    assert steps == {T0: 100.0, T0 + timedelta(minutes=5): 100.0,
                     T0 + timedelta(minutes=10): 300.0, T0 + timedelta(minutes=15): 300.0}
    month = store.history(Scope.DEVICE, "g0", Window.MONTH, clock.t)
    assert (month.step_seconds, len(month.points)) == (3600, 720)
    hour = [p for p in month.points if p.devices]
    assert [p.at for p in hour] == [T0] and hour[0].power_w == 200.0 and hour[0].power_w_max == 300.0


def test_retention_keeps_two_days_of_minutes_and_31_days_of_hours(engine: Engine) -> None:
    store = SqlHistory(engine)
    old = int((T0 - timedelta(days=3)).timestamp()) // 60
    recent = int((T0 - timedelta(hours=1)).timestamp()) // 60
    ancient = int((T0 - timedelta(days=40)).timestamp()) // 60
    rows = [MinuteRow("g0", "lab", mm, 1, 1.0, 1.0, 1.0, 1.0, 0.1, 0.0) for mm in (ancient, old, recent)]
    store.write_minutes(rows + [MinuteRow("g1", "lab", old, 1, 1.0, 1.0, 1.0, 1.0, 0.1, 0.0)])
    assert store.prune("g0", T0) == 3  # two minutes, one hour (40 days back); g1's are not g0's
    with engine.connect() as c:
        minutes = sorted(c.execute(select(m.DeviceMinute.device_id, m.DeviceMinute.minute)).all())
        hours = c.execute(select(func.count()).select_from(m.DeviceHour)).scalar()
    assert minutes == [("g0", recent), ("g1", old)]
    assert hours == 3  # g0's hour 3 days back and 1 hour back, g1's


class FlakyWriter:
    """The real store behind a switch that makes it fail like a store that is down."""

    def __init__(self, store: SqlHistory) -> None:
        self.store, self.down = store, True

    def write_minutes(self, rows: list[MinuteRow]) -> None:
        if self.down:
            raise StoreError("metrics history store failed: OperationalError")
        self.store.write_minutes(rows)

    def prune(self, device_id: str, now: datetime) -> int:
        return self.store.prune(device_id, now)


def test_minutes_wait_out_a_store_outage_and_bad_samples_are_not_counted(engine: Engine) -> None:
    writer = FlakyWriter(SqlHistory(engine))
    rec = HistoryRecorder("g0", "lab", writer, clock_at(T0))
    feed(rec, T0, 185)  # minutes 0, 1 and 2 ended, minute 3 open
    rec.add(T0 + timedelta(minutes=3, seconds=10), math.nan, 60.0, 0.5, 0.0)
    assert rec.pending == 3
    writer.down = False
    feed(rec, T0 + timedelta(minutes=4), 5)
    assert rec.pending == 0
    with engine.connect() as c:
        rows = c.execute(select(m.DeviceMinute.minute, m.DeviceMinute.samples)
                         .order_by(m.DeviceMinute.minute)).all()
    base = int(T0.timestamp()) // 60
    assert rows == [(base, 12), (base + 1, 12), (base + 2, 12), (base + 3, 1)]  # not the NaN


def test_auto_reads_the_store_while_prometheus_is_down_and_prometheus_mode_says_so(
        engine: Engine) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = PrometheusHistory(f"http://127.0.0.1:{port}", timeout_s=2)
    clock = clock_at(T0)
    auto = HistoryService(SqlHistory(engine), down, "auto", clock)
    assert auto.history(Scope.DEVICE, "g0", Window.HOUR).source is HistorySource.STORE
    strict = HistoryService(SqlHistory(engine), down, "prometheus", clock)
    with pytest.raises(HistoryUnavailableError) as err:
        strict.history(Scope.DEVICE, "g0", Window.HOUR)
    assert err.value.http_status == 503 and "127.0.0.1" not in str(err.value.to_dict())


def test_the_promql_names_one_subject_whatever_its_name_holds() -> None:
    q = promql("power_w", Scope.FACILITY, 'a"} or vector(1) #\\', 300)
    assert q == ('sum(avg_over_time(device:hcp_device_power_watts:avg_1m'
                 '{kind="gpu",facility="a\\"} or vector(1) #\\\\"}[300s]))')
    assert promql("devices", Scope.DEVICE, "g0", 60) == \
        'count(avg_over_time(device:hcp_device_power_watts:avg_1m{kind="gpu",device="g0"}[60s]))'


# --- the API ---------------------------------------------------------------------------


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return make_harness(tmp_path)


def test_the_api_answers_a_gpus_and_a_facilitys_history(harness: Harness) -> None:
    store = SqlHistory(harness.repo.engine)
    now = harness.clock.t
    start = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0) - timedelta(minutes=10)
    feed(HistoryRecorder("g0", "lab", store, harness.clock), start, 125, power=250.0)
    with TestClient(harness.app) as client:
        h = harness.headers(Role.ADMIN)
        body = client.get("/api/v1/metrics/devices/g0", headers=h).json()
        assert (body["scope"], body["window"], body["source"], len(body["points"])) == \
            ("device", "1h", "store", 60)
        filled = [p for p in body["points"] if p["devices"]]
        assert [p["power_w"] for p in filled] == [250.0, 250.0]
        fac = client.get("/api/v1/metrics/facilities/lab", params={"window": "1d"}, headers=h).json()
        assert (fac["step_seconds"], len(fac["points"])) == (300, 288)
        assert [p["power_w"] for p in fac["points"] if p["devices"]] == [250.0]


def test_the_history_api_refuses_what_it_cannot_answer(harness: Harness) -> None:
    with TestClient(harness.app) as client:
        admin = harness.headers(Role.ADMIN)
        r = client.get("/api/v1/metrics/devices/nope", headers=admin)
        assert (r.status_code, r.json()["error"]) == (404, "unknown_device")
        r = client.get("/api/v1/metrics/facilities/nowhere", headers=admin)
        assert (r.status_code, r.json()["error"]) == (404, "unknown_facility")
        r = client.get("/api/v1/metrics/devices/g0", params={"window": "7d"}, headers=admin)
        assert r.status_code == 422
        r = client.get("/api/v1/metrics/devices/g0%3Bdrop", headers=admin)
        assert r.status_code == 422
        r = client.get("/api/v1/metrics/devices/g0", headers=harness.headers(Role.CUSTOMER))
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")
        assert client.get("/api/v1/metrics/devices/g0").status_code == 401
