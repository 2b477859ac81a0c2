"""Typed messages about devices that cross actor boundaries: GPU status and switch results.

Actors hand these dataclasses to each other (Ray pickles them); JSON exists only at the HTTP
and CLI edges, through ``to_dict``. A field added here reaches every consumer unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from hcp.fleet.holds import Hold
from hcp.fleet.modes import GpuMode, SwitchPhases, SwitchReport
from hcp.fleet.telemetry import TelemetrySample


class DeviceKind(str, Enum):
    GPU = "gpu"
    ASIC = "asic"


class Availability(str, Enum):
    UP = "up"
    # The actor did not answer: restarting (Ray brings it back in its committed mode) or lost.
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class GpuStatus:
    """One GPU as its actor reports it (or, when ``availability`` is not UP, as last seen)."""

    device_id: str
    facility: str
    mode: GpuMode
    generation: int
    hashes_done: int = 0
    shares_found: int = 0
    hashrate_hs: float = 0.0
    inference_requests: int = 0
    utilization: float = 0.0
    telemetry: TelemetrySample | None = None
    mining_backend: str = ""
    inference_model: str = ""
    availability: Availability = Availability.UP
    detail: str = ""
    held_by: str | None = None  # the job or workload holding the GPU (hcp.fleet.holds key)

    @property
    def holder(self) -> Hold | None:
        return Hold.parse(self.held_by)

    @property
    def up(self) -> bool:
        return self.availability is Availability.UP

    @property
    def temperature_c(self) -> float | None:
        """None when unknown (no telemetry): never a made-up default."""
        return self.telemetry.temperature_c if self.telemetry is not None else None

    @property
    def power_w(self) -> float:
        return self.telemetry.power_w if self.telemetry is not None else 0.0

    def unavailable(self, detail: str) -> GpuStatus:
        """This status marked as not answering now: the last known values, flagged."""
        return replace(self, availability=Availability.UNAVAILABLE, detail=detail, hashrate_hs=0.0,
                       utilization=0.0)

    @classmethod
    def never_seen(cls, device_id: str, facility: str, detail: str) -> GpuStatus:
        return cls(device_id, facility, GpuMode.IDLE, -1, availability=Availability.UNAVAILABLE,
                   detail=detail)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id, "facility": self.facility, "mode": self.mode.value,
            "generation": self.generation, "hashes_done": self.hashes_done,
            "shares_found": self.shares_found, "hashrate_hs": self.hashrate_hs,
            "inference_requests": self.inference_requests, "utilization": self.utilization,
            "telemetry": self.telemetry.to_dict() if self.telemetry is not None else None,
            "mining_backend": self.mining_backend, "inference_model": self.inference_model,
            "availability": self.availability.value, "detail": self.detail,
            "held_by": self.held_by,
        }


@dataclass(frozen=True)
class SwitchResult:
    """What one committed (or refused as a no-op) mode change did, for GPUs and ASICs alike."""

    report: SwitchReport
    generation: int
    persist_ms: float = 0.0
    kind: DeviceKind = DeviceKind.GPU
    facility: str = ""
    power_before_w: float | None = None  # ASICs: the facility draw it changed
    power_after_w: float | None = None
    correlation_id: str | None = None  # the request or decision this switch answered

    @property
    def device_id(self) -> str:
        return self.report.device_id

    @property
    def from_mode(self) -> GpuMode:
        return self.report.from_mode

    @property
    def to_mode(self) -> GpuMode:
        return self.report.to_mode

    @property
    def noop(self) -> bool:
        return self.report.noop

    @property
    def total_ms(self) -> float:
        return self.report.total_ms

    @property
    def phases(self) -> SwitchPhases:
        return self.report.phases

    @property
    def at(self) -> datetime:
        return self.report.at

    def to_dict(self) -> dict[str, Any]:
        d = {**self.report.to_dict(), **asdict(self)}
        d.pop("report")
        d["kind"] = self.kind.value
        return d


# The old name, kept for the callers that still spell it so.
CommittedSwitch = SwitchResult
