"""Operating modes of a compute device and the typed reports of changing them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from hcp.errors import InvalidModeError


class GpuMode(str, Enum):
    MINING = "MINING"
    INFERENCE = "INFERENCE"
    IDLE = "IDLE"
    CURTAILED = "CURTAILED"  # powered down for demand response / power cap
    # Handed to a customer's container (a marketplace job): entered and left only through a
    # hold (hcp.fleet.holds), never by a plain switch.
    RENTED = "RENTED"

    @classmethod
    def parse(cls, value: str | GpuMode) -> GpuMode:
        if isinstance(value, GpuMode):
            return value
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise InvalidModeError(f"unknown mode {value!r}; expected one of {allowed}", mode=str(value)) from None


@dataclass(frozen=True)
class SwitchRequest:
    """One caller's ask of one device, GPU or ASIC, as it crosses into the device's actor.

    ``correlation_id`` names the decision or request it answers (an optimizer decision id, an
    API request id); it is committed in the event's own column, never written into ``reason``.
    """

    device_id: str
    target: GpuMode
    reason: str = ""
    correlation_id: str | None = None

    def __post_init__(self) -> None:
        # An unknown mode never leaves the caller's process: the request cannot be built.
        object.__setattr__(self, "target", GpuMode.parse(self.target))


@dataclass(frozen=True)
class SwitchPhases:
    """Milliseconds spent in each phase of a switch."""

    pause_ms: float
    save_state_ms: float
    activate_ms: float
    health_check_ms: float

    @property
    def total_ms(self) -> float:
        return self.pause_ms + self.save_state_ms + self.activate_ms + self.health_check_ms


@dataclass(frozen=True)
class SwitchReport:
    device_id: str
    from_mode: GpuMode
    to_mode: GpuMode
    phases: SwitchPhases
    total_ms: float
    at: datetime
    reason: str = ""
    healthy: bool = True
    noop: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["from_mode"] = self.from_mode.value
        d["to_mode"] = self.to_mode.value
        d["at"] = self.at.isoformat()
        return d
