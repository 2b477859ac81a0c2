"""A facility: its ASICs' modes (committed like GPU modes) and its power against the cap."""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from hcp.clock import Clock, SystemClock
from hcp.errors import InvalidTransitionError, UnknownDeviceError
from hcp.fleet.modes import GpuMode, SwitchPhases, SwitchReport
from hcp.fleet.status import DeviceKind, GpuStatus, SwitchResult

if TYPE_CHECKING:
    from hcp.fleet.repository import FleetRepository
    from hcp.fleet.spec import AsicSpec, FacilitySpec

log = logging.getLogger(__name__)

# An ASIC that is curtailed or idle still draws its control board and fans.
_ASIC_STANDBY_W = 15.0


@dataclass(frozen=True)
class FacilityReport:
    facility: str
    capacity_w: float
    pue: float
    it_power_w: float
    facility_power_w: float  # IT power × PUE: what the grid connection sees
    headroom_w: float
    over_cap: bool
    gpu_modes: dict[str, int]
    asic_modes: dict[str, int]
    gpu_hashrate_hs: float
    asic_hashrate_ths: float
    telemetry_sources: list[str] = field(default_factory=list)
    gpus: list[GpuStatus] = field(default_factory=list)
    asics: dict[str, GpuMode] = field(default_factory=dict)
    # GPUs whose actor did not answer (restarting): their last known state is in ``gpus``.
    unavailable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gpus"] = [g.to_dict() for g in self.gpus]
        d["asics"] = {k: v.value for k, v in self.asics.items()}
        return d


def asic_power_w(spec: AsicSpec, mode: GpuMode) -> float:
    return spec.power_w if mode is GpuMode.MINING else _ASIC_STANDBY_W


def facility_report(spec: FacilitySpec, gpu_status: list[GpuStatus],
                    asic_modes: dict[str, GpuMode]) -> FacilityReport:
    """Aggregate the devices' power (GPUs: measured or simulated telemetry) against the cap.

    A GPU that did not answer counts with its last known draw: the cap check must not
    think a restarting GPU's power went away.
    """
    it_w = sum(g.power_w for g in gpu_status)
    gpu_modes: dict[str, int] = {}
    for g in gpu_status:
        gpu_modes[g.mode.value] = gpu_modes.get(g.mode.value, 0) + 1
    asic_counts: dict[str, int] = {}
    ths = 0.0
    for a in spec.asics:
        mode = asic_modes.get(a.id, GpuMode.MINING)
        it_w += asic_power_w(a, mode)
        asic_counts[mode.value] = asic_counts.get(mode.value, 0) + 1
        if mode is GpuMode.MINING:
            ths += a.hashrate_ths
    fac_w = it_w * spec.pue
    cap_w = spec.capacity_mw * 1e6
    return FacilityReport(
        facility=spec.name, capacity_w=cap_w, pue=spec.pue, it_power_w=it_w, facility_power_w=fac_w,
        headroom_w=cap_w - fac_w, over_cap=fac_w > cap_w, gpu_modes=gpu_modes, asic_modes=asic_counts,
        gpu_hashrate_hs=sum(g.hashrate_hs for g in gpu_status),
        asic_hashrate_ths=ths,
        telemetry_sources=sorted({g.telemetry.source for g in gpu_status if g.telemetry}),
        gpus=list(gpu_status), asics={a.id: asic_modes.get(a.id, GpuMode.MINING) for a in spec.asics},
        unavailable=[g.device_id for g in gpu_status if not g.up],
    )


class Facility:
    """Owns the facility's ASICs. ASIC mode changes are committed to the store like GPU switches."""

    def __init__(self, spec: FacilitySpec, repo: FleetRepository, clock: Clock | None = None) -> None:
        self.spec = spec
        self.repo = repo
        self._clock = clock or SystemClock()
        self._asics = {a.id: a for a in spec.asics}
        self._modes: dict[str, GpuMode] = {}
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        for a in self.spec.asics:
            st = self.repo.device_state(a.id)
            self._modes[a.id] = st.mode
            self._generations[a.id] = st.generation

    def asic_modes(self) -> dict[str, GpuMode]:
        return dict(self._modes)

    def set_asic_mode(self, asic_id: str, target: GpuMode | str, reason: str = "",
                      correlation_id: str | None = None) -> SwitchResult:
        """Commit an ASIC's mode. An ASIC switch is a power command, not a context swap: the
        result carries the committed generation and the draw it changed, no phase timings."""
        target = GpuMode.parse(target)
        if asic_id not in self._asics:
            raise UnknownDeviceError(f"no ASIC {asic_id!r} in facility {self.spec.name!r}", device_id=asic_id)
        if target in (GpuMode.INFERENCE, GpuMode.RENTED):
            raise InvalidTransitionError(f"{asic_id} is a mining ASIC; it runs no {target.value} work",
                                         device_id=asic_id, target=target.value)
        with self._lock:
            source = self._modes[asic_id]
            zero = SwitchPhases(0.0, 0.0, 0.0, 0.0)
            report = SwitchReport(asic_id, source, target, zero, 0.0, self._clock.now(), reason,
                                  True, source is target)
            spec = self._asics[asic_id]
            before, after = asic_power_w(spec, source), asic_power_w(spec, target)
            if not report.noop:
                self._generations[asic_id] = self.repo.commit_mode_change(
                    report, self._generations[asic_id], facility=self.spec.name,
                    correlation_id=correlation_id)
                self._modes[asic_id] = target
            return SwitchResult(report, self._generations[asic_id], 0.0, DeviceKind.ASIC,
                                self.spec.name, before * self.spec.pue, after * self.spec.pue,
                                correlation_id)

    def report(self, gpu_status: list[GpuStatus]) -> FacilityReport:
        return facility_report(self.spec, gpu_status, self._modes)
