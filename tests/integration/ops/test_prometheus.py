"""The real Prometheus (Debian's package) scraping a stand-in that exports every catalogue
metric as Ray's agent does: names come back without Ray's prefix, the recording rules make
the one-minute history, and an alert fires, reaches Alertmanager's critical route, resolves."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from hcp.observability.catalogue import series_names
from tests.integration.ops.conftest import OpsStack, get_json
from tests.waiting import wait_until

RULES = Path(__file__).resolve().parents[3] / "ops" / "prometheus" / "rules"


def test_the_stand_in_is_scraped_through_file_sd_with_rays_prefix_taken_off(
        ops_stack: OpsStack) -> None:
    up = wait_until(lambda: ops_stack.query('up{job="ray"} == 1'), timeout=60)
    assert len(up) == 1
    names = {r["metric"]["__name__"] for r in wait_until(lambda: ops_stack.query(
        'count by (__name__) ({__name__=~"hcp_.+|http_.+|jobs_.+"})'), timeout=30)}
    # Scraped names only: a recording rule's output (``hcp_chain_block_height:max_1m``, named
    # level:metric:operation) appears once the rules have run, and is the next test's subject.
    assert {n for n in names if ":" not in n} == set(series_names())
    assert ops_stack.query('{__name__=~"ray_(hcp|http|jobs)_.+"}') == []
    sample = ops_stack.query("jobs_created_total")[0]["metric"]
    assert sample["job"] == "ray" and sample["WorkerId"]
    assert not any(k.startswith("otel_scope") for k in sample)
    # Ray's own metrics keep their names.
    assert ops_stack.query("ray_node_cpu_utilization")


def test_the_recording_rules_produce_the_history_series(ops_stack: OpsStack) -> None:
    records = [r["record"] for g in yaml.safe_load((RULES / "recording.yml").read_text())["groups"]
               for r in g["rules"]]
    for record in records:
        wait_until(lambda rec=record: ops_stack.query(rec), timeout=60)
    # The stand-in's two GPUs are both mining; its facility draws 6.5 kW of a 10 kW cap.
    mining = ops_stack.query('mode_kind:hcp_device_mode:sum{mode="MINING", kind="gpu"}')
    assert float(mining[0]["value"][1]) == 2
    headroom = ops_stack.query('facility:hcp_facility_power_headroom_watts:min_1m')
    assert headroom[0]["metric"] == {"__name__": "facility:hcp_facility_power_headroom_watts:min_1m",
                                     "facility": "local-lab"}
    assert float(headroom[0]["value"][1]) == 3500


def test_an_alert_fires_reaches_the_critical_receiver_and_resolves(ops_stack: OpsStack) -> None:
    wait_until(lambda: ops_stack.query("hcp_escrow_conservation_residual"), timeout=60)

    def firing() -> list[dict]:  # type: ignore[type-arg]
        alerts = get_json(f"{ops_stack.prometheus}/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "EscrowConservationViolated"
                and a["state"] == "firing"]

    assert firing() == []
    ops_stack.override("hcp_escrow_conservation_residual", 7, backend="sql")
    alert = wait_until(firing, timeout=30)[0]
    assert alert["labels"]["backend"] == "sql" and alert["labels"]["severity"] == "critical"

    def received() -> list[dict]:  # type: ignore[type-arg]
        return [a for a in get_json(f"{ops_stack.alertmanager}/api/v2/alerts")
                if a["labels"]["alertname"] == "EscrowConservationViolated"]

    delivered = wait_until(received, timeout=30)[0]
    assert [r["name"] for r in delivered["receivers"]] == ["critical"]
    assert delivered["annotations"]["summary"] == (
        "The sql escrow ledger does not conserve value (residual 7)")

    ops_stack.override("hcp_escrow_conservation_residual", 0, backend="sql")
    wait_until(lambda: not firing(), timeout=30)


def test_prometheus_keeps_180_days_and_listens_on_loopback(ops_stack: OpsStack) -> None:
    flags = get_json(f"{ops_stack.prometheus}/api/v1/status/flags")["data"]
    assert flags["storage.tsdb.retention.time"] == "180d"
    assert flags["web.listen-address"].startswith("127.0.0.1:")
    assert flags["storage.tsdb.path"].startswith(str(ops_stack.settings.home))


def test_the_metrics_history_reads_prometheus_recorded_series(ops_stack: OpsStack,
                                                              tmp_path: Path) -> None:
    """``GET /api/v1/metrics/...``'s Prometheus side: a facility's step is its GPUs' steps
    together, as the store computes it, and ``auto`` reads Prometheus while it answers."""
    import math
    from datetime import UTC, datetime, timedelta

    from hcp.fleet.repository import FleetRepository
    from hcp.fleet.spec import parse_fleet_spec
    from hcp.observability.history import (
        HistoryService,
        HistorySource,
        PrometheusHistory,
        Scope,
        SqlHistory,
        Window,
    )
    from hcp.store import connect
    from tests.conftest import migrated_sqlite_url

    reader = PrometheusHistory(ops_stack.prometheus)
    assert reader.ready()

    def complete_steps() -> list[Any]:
        now = datetime.now(UTC)
        fac = reader.history(Scope.FACILITY, "local-lab", Window.HOUR, now)
        done = [p for p in fac.points
                if p.devices and p.at + timedelta(seconds=fac.step_seconds) < now - timedelta(seconds=5)]
        return [(p, now) for p in done]

    point, now = wait_until(complete_steps, timeout=120)[-1]
    assert point.devices == 2
    devices = [next(p for p in reader.history(Scope.DEVICE, d, Window.HOUR, now).points
                    if p.at == point.at) for d in ("lab-gpu-0", "lab-gpu-1")]
    assert all(p.devices == 1 and 295 <= (p.power_w or 0) <= 305 for p in devices)  # 300 ± 5 W
    assert math.isclose(point.power_w or 0, sum(p.power_w or 0 for p in devices), rel_tol=1e-9)
    assert math.isclose(point.power_w_max or 0, sum(p.power_w_max or 0 for p in devices), rel_tol=1e-9)
    assert point.temperature_c_max == max(p.temperature_c_max or 0 for p in devices)
    assert math.isclose(point.utilization or 0, 0.6)  # the stand-in pins utilization at 0.6

    engine = connect(migrated_sqlite_url(tmp_path, "fleet.db"))
    FleetRepository(engine).sync_fleet(parse_fleet_spec({"fleet": "ops", "facilities": [{
        "name": "local-lab", "location": "test", "capacity_mw": 0.01, "pue": 1.2,
        "gpus": [{"id": "lab-gpu-0", "model": "H100"}, {"id": "lab-gpu-1", "model": "H100"}]}]},
        "ops"))

    class Now:
        def now(self) -> datetime:
            return datetime.now(UTC)

        def monotonic(self) -> float:
            return time.monotonic()

    auto = HistoryService(SqlHistory(engine), reader, "auto", Now())
    h = auto.history(Scope.DEVICE, "lab-gpu-0", Window.DAY)
    assert h.source is HistorySource.PROMETHEUS and h.step_seconds == 300
    assert any(p.devices == 1 for p in h.points)
