"""Importable by Ray workers: a policy that flips every device at every tick (maximal switching)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from hcp.economics.policy.decision import Decision, DecisionReason

_FLIP = {"gpu": {"MINING": "INFERENCE", "INFERENCE": "MINING", "IDLE": "MINING", "CURTAILED": "MINING"},
         "asic": {"MINING": "CURTAILED", "CURTAILED": "MINING", "IDLE": "MINING"}}


class FlipPolicy:
    def __init__(self, devices: Sequence[tuple[str, str, str]]) -> None:
        self._devices = list(devices)  # (device_id, facility, kind)
        self.decided = 0

    def decide(self, tick: Any, current_modes: Mapping[str, str], now: datetime,
               fixed: Collection[str] = ()) -> list[Decision]:
        out = []
        for dev, fac, kind in self._devices:
            if dev in fixed:
                continue
            cur = current_modes[dev]
            out.append(Decision(Decision.make_id(tick.at, dev), dev, fac, kind, cur, _FLIP[kind][cur],
                                DecisionReason.BETTER_PROFIT, 0.0, tick.at))
        self.decided += len(out)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"decided": self.decided}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.decided = int(d["decided"])
