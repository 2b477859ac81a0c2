"""Typed decisions: what a policy wants changed, why, and what it expects to gain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any


class DecisionReason(str, Enum):
    BETTER_PROFIT = "BETTER_PROFIT"  # another mode beats the current one past threshold and dwell
    CURTAIL_POWER_PRICE = "CURTAIL_POWER_PRICE"  # mining/serving loses money at this power price
    RESUME_POWER_PRICE = "RESUME_POWER_PRICE"  # power is cheap enough again to run
    POWER_CAP = "POWER_CAP"  # the facility's MW cap binds; less profitable devices stop first
    FIXED_POLICY = "FIXED_POLICY"  # a baseline policy (always mine / always inference)
    INITIAL = "INITIAL"  # first placement of a device with no usable current mode


@dataclass(frozen=True)
class Decision:
    decision_id: str  # f"{tick.at.isoformat()}:{device_id}": a replayed tick yields the same id
    device_id: str
    facility: str
    kind: str  # "gpu" or "asic"
    from_mode: str  # hcp.fleet.modes.GpuMode value
    to_mode: str
    reason: DecisionReason
    expected_gain_usd_per_hour: float
    tick_at: datetime

    @staticmethod
    def make_id(tick_at: datetime, device_id: str) -> str:
        return f"{tick_at.isoformat()}:{device_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "device_id": self.device_id,
            "facility": self.facility,
            "kind": self.kind,
            "from_mode": self.from_mode,
            "to_mode": self.to_mode,
            "reason": self.reason.value,
            "expected_gain_usd_per_hour": self.expected_gain_usd_per_hour,
            "tick_at": self.tick_at.isoformat(),
        }
