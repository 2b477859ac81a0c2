"""What the fleet's shells record: a device's status, a switch's timings, a facility's power.

Thin helpers over a MetricsSink so a GPU actor, the facility actor or a test writes one call
instead of a dozen; the names and labels are the catalogue's.
"""

from __future__ import annotations

from typing import Any

from hcp.observability.catalogue import switch_direction
from hcp.observability.sink import MetricsSink


def record_device(sink: MetricsSink, status: Any, *, facility: str, kind: str, model: str,
                  temperature_limit_c: float | None = None,
                  shares_before: int | None = None) -> None:
    """A ``WorkerStatus`` (mode, hashrate, shares, telemetry). ``shares_before`` is the share
    count of the previous call: the counter moves by the difference (None, the first call:
    the series is exported at 0, so ``increase()`` sees the first share)."""
    dev = {"device": status.device_id, "facility": facility, "kind": kind}
    t = status.telemetry
    sink.set_state("hcp_device_mode", "mode", status.mode, **dev)
    sink.set("hcp_device_info", 1, **dev, model=model, telemetry=t.source)
    sink.set("hcp_device_hashrate_hashes_per_second", status.hashrate_hs, **dev)
    sink.set("hcp_device_power_watts", t.power_w, **dev)
    sink.set("hcp_device_temperature_celsius", t.temperature_c, **dev)
    sink.set("hcp_device_utilization_ratio", status.utilization, **dev)
    if temperature_limit_c is not None:
        sink.set("hcp_device_temperature_limit_celsius", temperature_limit_c, **dev)
    if shares_before is None:
        sink.inc("hcp_device_shares_total", 0, **dev)  # exported at 0 before its first share
    elif status.shares_found > shares_before:
        sink.inc("hcp_device_shares_total", status.shares_found - shares_before, **dev)


def record_switch(sink: MetricsSink, report: Any, *, kind: str) -> None:
    """A committed ``SwitchReport``: total and per-phase seconds (no-op switches are skipped)."""
    if getattr(report, "noop", False):
        return
    direction = switch_direction(report.from_mode, report.to_mode)
    sink.observe("hcp_switch_duration_seconds", report.total_ms / 1e3, kind=kind,
                 direction=direction)
    phases = report.phases
    for phase, ms in (("pause", phases.pause_ms), ("save_state", phases.save_state_ms),
                      ("activate", phases.activate_ms), ("health_check", phases.health_check_ms)):
        sink.observe("hcp_switch_phase_seconds", ms / 1e3, kind=kind, direction=direction,
                     phase=phase)


def record_facility(sink: MetricsSink, report: Any) -> None:
    """A ``FacilityReport``: the power the grid connection sees against the facility's cap."""
    sink.set("hcp_facility_power_watts", report.facility_power_w, facility=report.facility)
    sink.set("hcp_facility_power_cap_watts", report.capacity_w, facility=report.facility)
