"""Test doubles for the optimizer: a scripted feed, a scripted policy, and a fleet port whose
"devices" commit their mode changes to the real store exactly as GPU and facility actors do."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from hcp.economics.market.tick import PriceTick
from hcp.economics.optimizer.types import ApplyOrder, ApplyResult
from hcp.economics.policy.decision import Decision, DecisionReason
from hcp.fleet.modes import GpuMode, SwitchPhases, SwitchReport
from hcp.fleet.repository import FleetRepository

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

SPEC = {
    "fleet": "unit-opt",
    "facilities": [{
        "name": "lab", "location": "test", "capacity_mw": 0.01, "pue": 1.25,
        "gpus": [{"id": "g-h100", "model": "H100"}, {"id": "g-l40s", "model": "L40S"}],
        "asics": [{"id": "s21", "model": "S21", "count": 2}, {"id": "s19", "model": "S19 XP", "count": 2}],
    }],
}


def tick(at: datetime, power: float = 100.0, btc: float = 40_000.0, h100: float = 3.5,
         l40s: float = 1.0) -> PriceTick:
    return PriceTick(at=at, btc_usd=btc, difficulty=2.8e13, block_subsidy_btc=6.25, fees_per_block_btc=0.1,
                     power_usd_per_mwh={"lab": power}, gpu_usd_per_hour={"H100": h100, "L40S": l40s})


class ScriptedFeed:
    """Hands out the given ticks one per call (a replay: a new instance starts again from the top)."""

    def __init__(self, ticks: Sequence[PriceTick]) -> None:
        self._ticks = list(ticks)
        self._i = 0

    def next_tick(self, now: datetime) -> PriceTick | None:
        if self._i >= len(self._ticks):
            return None
        self._i += 1
        return self._ticks[self._i - 1]


class ScriptedPolicy:
    """Wants each device in the mode the script gives for the tick; counts its calls as state."""

    def __init__(self, script: Mapping[datetime, Mapping[str, str]], facility: str = "lab") -> None:
        self._script = script
        self._facility = facility
        self.calls = 0

    def decide(self, t: PriceTick, current_modes: Mapping[str, str], now: datetime,
               fixed: Collection[str] = ()) -> list[Decision]:
        self.calls += 1
        want = self._script.get(t.at, {})
        return [Decision(Decision.make_id(t.at, dev), dev, self._facility,
                         "asic" if dev.startswith("s") else "gpu", current_modes[dev], mode,
                         DecisionReason.BETTER_PROFIT, 1.0, t.at)
                for dev, mode in sorted(want.items()) if current_modes.get(dev) != mode]

    def state_dict(self) -> dict[str, Any]:
        return {"calls": self.calls}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.calls = int(d["calls"])


class Crash(BaseException):
    """The optimizer process dying mid-broadcast (not an error it may handle)."""


class StoreBackedPort:
    """Devices that commit like the real ones: compare-and-set on the generation, reason recorded."""

    def __init__(self, repo: FleetRepository, *, fail: set[str] | None = None,
                 timeout: set[str] | None = None, crash_after: int | None = None) -> None:
        self.repo = repo
        self.fail = fail or set()
        self.timeout = timeout or set()
        self.crash_after = crash_after
        self.sent: list[str] = []  # decision ids, in the order they reached a device
        self.now = T0  # when the devices commit (tests move it with the optimizer's clock)

    def apply(self, orders: Sequence[ApplyOrder], timeout_s: float) -> list[ApplyResult]:
        out = []
        for k, o in enumerate(orders):
            if self.crash_after is not None and k >= self.crash_after:
                raise Crash(f"optimizer died after sending {k} orders")
            self.sent.append(o.decision_id)
            if o.device_id in self.fail:
                out.append(ApplyResult(o.decision_id, False, 1.0, error="switch_failed: health check"))
                continue
            if o.device_id in self.timeout:
                out.append(ApplyResult(o.decision_id, False, None, timed_out=True, error="no ack"))
                continue
            out.append(self.commit(o))
        return out

    def commit(self, o: ApplyOrder) -> ApplyResult:
        st = self.repo.device_state(o.device_id)
        target = GpuMode.parse(o.to_mode)
        if st.mode is target:
            return ApplyResult(o.decision_id, True, 0.5, generation=st.generation, noop=True)
        report = SwitchReport(o.device_id, st.mode, target, SwitchPhases(0.1, 0.1, 0.1, 0.1), 0.4,
                              self.now, o.reason)
        gen = self.repo.commit_mode_change(report, st.generation, facility=o.facility)
        return ApplyResult(o.decision_id, True, 0.5, generation=gen)


class FakeClock:
    def __init__(self, t: datetime = T0) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t

    def monotonic(self) -> float:
        return self.t.timestamp()
