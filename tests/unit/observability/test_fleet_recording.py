"""The fleet's recording helpers over the real status, switch and facility types."""

from __future__ import annotations

from datetime import UTC, datetime

from hcp.fleet.facility import FacilityReport
from hcp.fleet.modes import GpuMode, SwitchPhases, SwitchReport
from hcp.fleet.telemetry import TelemetrySample
from hcp.fleet.worker import WorkerStatus
from hcp.observability.fleet import record_device, record_facility, record_switch
from hcp.observability.sink import PrometheusSink

DEV = {"device": "lab-gpu-0", "facility": "lab", "kind": "gpu"}


def status(shares: int, mode: GpuMode = GpuMode.MINING) -> WorkerStatus:
    sample = TelemetrySample(power_w=312.0, temperature_c=64.5, utilization_pct=90.0,
                             memory_used_mb=1.0, memory_total_mb=80.0, source="simulated",
                             at=datetime.now(UTC))
    return WorkerStatus("lab-gpu-0", mode, hashes_done=10, shares_found=shares,
                        hashrate_hs=2.5e6, inference_requests=0, utilization=0.9,
                        telemetry=sample, mining_backend="numba", inference_model="m")


def test_a_device_status_becomes_its_gauges_and_share_counter() -> None:
    sink = PrometheusSink()
    # The first reading is the baseline: the counter is exported at 0, its shares not counted.
    record_device(sink, status(2), facility="lab", kind="gpu", model="H100")
    assert sink.value("hcp_device_shares_total", **DEV) == 0
    record_device(sink, status(3), facility="lab", kind="gpu", model="H100",
                  temperature_limit_c=83.0, shares_before=0)
    record_device(sink, status(5, GpuMode.INFERENCE), facility="lab", kind="gpu", model="H100",
                  shares_before=3)
    assert sink.value("hcp_device_mode", **DEV, mode="INFERENCE") == 1
    assert sink.value("hcp_device_mode", **DEV, mode="MINING") == 0
    assert sink.value("hcp_device_info", **DEV, model="H100", telemetry="simulated") == 1
    assert sink.value("hcp_device_power_watts", **DEV) == 312.0
    assert sink.value("hcp_device_temperature_celsius", **DEV) == 64.5
    assert sink.value("hcp_device_temperature_limit_celsius", **DEV) == 83.0
    assert sink.value("hcp_device_utilization_ratio", **DEV) == 0.9
    assert sink.value("hcp_device_hashrate_hashes_per_second", **DEV) == 2.5e6
    assert sink.value("hcp_device_shares_total", **DEV) == 5


def test_a_switch_records_its_total_and_phases_and_a_noop_nothing() -> None:
    sink = PrometheusSink()
    phases = SwitchPhases(pause_ms=1.0, save_state_ms=0.5, activate_ms=2.0, health_check_ms=0.5)
    report = SwitchReport("lab-gpu-0", GpuMode.MINING, GpuMode.INFERENCE, phases, 4.0,
                          datetime.now(UTC))
    record_switch(sink, report, kind="gpu")
    record_switch(sink, SwitchReport("lab-gpu-0", GpuMode.INFERENCE, GpuMode.INFERENCE, phases,
                                     0.0, datetime.now(UTC), noop=True), kind="gpu")
    labels = {"kind": "gpu", "direction": "MINING_TO_INFERENCE"}
    assert sink.value("hcp_switch_duration_seconds_count", **labels) == 1
    assert sink.value("hcp_switch_duration_seconds_sum", **labels) == 0.004
    assert sink.value("hcp_switch_phase_seconds_sum", **labels, phase="activate") == 0.002
    assert sink.value("hcp_switch_duration_seconds_count", kind="gpu",
                      direction="INFERENCE_TO_INFERENCE") is None


def test_a_facility_report_records_power_against_the_cap() -> None:
    sink = PrometheusSink()
    record_facility(sink, FacilityReport("lab", capacity_w=10_000, pue=1.25, it_power_w=4_000,
                                         facility_power_w=5_000, headroom_w=5_000, over_cap=False,
                                         gpu_modes={}, asic_modes={}, gpu_hashrate_hs=0,
                                         asic_hashrate_ths=0))
    assert sink.value("hcp_facility_power_watts", facility="lab") == 5_000
    assert sink.value("hcp_facility_power_cap_watts", facility="lab") == 10_000
