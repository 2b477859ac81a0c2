"""Facility power against its cap, and ASIC mode changes committed like GPU switches."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hcp.errors import InvalidModeError, InvalidTransitionError, UnknownDeviceError
from hcp.fleet.facility import Facility, facility_report
from hcp.fleet.modes import GpuMode, SwitchRequest
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import parse_fleet_spec
from hcp.fleet.status import DeviceKind, GpuStatus
from hcp.fleet.telemetry import TelemetrySample
from hcp.store import connect, migrate

SPEC = parse_fleet_spec({"fleet": "f", "facilities": [{
    "name": "site", "location": "x", "capacity_mw": 0.01, "pue": 1.25,
    "gpus": [{"id": "g", "model": "H100"}],
    "asics": [{"id": "s21", "model": "S21", "count": 2}, {"id": "xp", "model": "S19 XP"}]}]}, "f")


def _gpu(mode: str, watts: float, hashrate: float = 0.0) -> GpuStatus:
    tel = TelemetrySample(watts, 50.0, 0.0, 0.0, 81920.0, "simulated", datetime.now(UTC))
    return GpuStatus("g", "site", GpuMode(mode), 0, hashrate_hs=hashrate, telemetry=tel)


def test_report_adds_gpu_telemetry_and_asic_nameplate_times_pue() -> None:
    fac = SPEC.facilities[0]
    modes = {"s21-0": GpuMode.MINING, "s21-1": GpuMode.CURTAILED, "xp": GpuMode.MINING}
    r = facility_report(fac, [_gpu("MINING", 650.0, 1e6)], modes)
    assert r.it_power_w == pytest.approx(650 + 3500 + 15 + 3010)
    assert r.facility_power_w == pytest.approx(r.it_power_w * 1.25)
    assert r.capacity_w == 10_000 and r.over_cap is False
    assert r.headroom_w == pytest.approx(10_000 - r.facility_power_w)
    assert r.asic_modes == {"MINING": 2, "CURTAILED": 1} and r.gpu_modes == {"MINING": 1}
    assert r.asic_hashrate_ths == 200 + 140 and r.gpu_hashrate_hs == 1e6
    all_on = facility_report(fac, [_gpu("MINING", 650.0)], {})  # ASICs default to MINING
    assert all_on.over_cap is True and all_on.headroom_w < 0


def test_a_restarting_gpu_counts_with_its_last_known_draw() -> None:
    fac = SPEC.facilities[0]
    last = _gpu("MINING", 650.0, 1e6)
    r = facility_report(fac, [last.unavailable("restarting")], {})
    assert r.unavailable == ["g"] and r.gpus[0].mode is GpuMode.MINING
    assert r.it_power_w == pytest.approx(650 + 2 * 3500 + 3010)  # the cap check keeps its draw
    assert r.gpu_hashrate_hs == 0.0  # but it hashes nothing while down


def test_asic_modes_are_committed_and_validated(tmp_path: Path) -> None:
    repo = FleetRepository(connect(f"sqlite:///{tmp_path / 'f.db'}"))
    migrate(repo.engine)
    repo.sync_fleet(SPEC)
    fac = Facility(SPEC.facilities[0], repo)
    fac.load()
    r = fac.set_asic_mode("s21-0", "curtailed", "power price above break-even", "decision-7")
    assert (r.from_mode, r.to_mode) == (GpuMode.MINING, GpuMode.CURTAILED)
    # The result names the decision it answered.
    assert r.correlation_id == "decision-7" and r.to_dict()["correlation_id"] == "decision-7"
    # What an ASIC switch did: a committed generation and the draw it changed (×PUE).
    assert r.kind is DeviceKind.ASIC and r.generation == 1 and r.facility == "site"
    assert (r.power_before_w, r.power_after_w) == (3500 * 1.25, 15 * 1.25)
    assert fac.set_asic_mode("s21-0", GpuMode.CURTAILED).noop
    with pytest.raises(InvalidTransitionError):
        fac.set_asic_mode("s21-1", "INFERENCE")
    with pytest.raises(UnknownDeviceError):
        fac.set_asic_mode("nope", "IDLE")
    st = repo.device_state("s21-0")
    assert (st.mode, st.generation) == (GpuMode.CURTAILED, 1)
    reloaded = Facility(SPEC.facilities[0], repo)
    reloaded.load()  # a restarted facility actor sees the committed modes
    assert reloaded.asic_modes()["s21-0"] is GpuMode.CURTAILED
    [ev] = repo.events(device_id="s21-0", kind="mode_change")
    assert ev.reason == "power price above break-even" and ev.facility == "site"


def test_a_switch_request_carries_a_parsed_mode_and_its_correlation_id() -> None:
    """What crosses into a device's actor: the mode parsed where the request is made."""
    r = SwitchRequest("s21-0", "curtailed", "power price above break-even", "decision-7")  # type: ignore[arg-type]
    assert r.target is GpuMode.CURTAILED and r.correlation_id == "decision-7"
    assert r.reason == "power price above break-even"
    with pytest.raises(InvalidModeError):
        SwitchRequest("s21-0", "TURBO")  # type: ignore[arg-type]
