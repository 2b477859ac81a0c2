"""Hour-by-hour backtest of the switching policies against the perfect-foresight optimum.

Every policy goes through the same code the live optimizer runs (``FleetPolicy.step``
and the same power-cap allocation); the baselines only replace the choice of mode.
Profit is expected profit at each hour's prices, net of switching costs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hcp.economics.backtest.optimum import perfect_foresight
from hcp.economics.devices import (
    DeviceEconomics,
    FacilityEconomics,
    from_fleet_spec,
)
from hcp.economics.market.quality import DataIssue
from hcp.economics.market.replay import MarketHistory
from hcp.economics.policy.cap import enforce_caps
from hcp.economics.policy.fleet_policy import FleetPolicy
from hcp.economics.policy.params import PolicyParams
from hcp.economics.policy.profit import (
    CURTAILED,
    IDLE,
    INFERENCE,
    MINING,
    MODES,
    RENTED,
    FleetArrays,
)
from hcp.fleet.spec import FleetSpec

log = logging.getLogger(__name__)

POLICIES = ("always_mine", "always_inference", "always_rent", "greedy", "hcp", "hcp_rent",
            "perfect_foresight")
_RENTING = frozenset({"always_rent", "hcp_rent"})


@dataclass(frozen=True)
class PolicyOutcome:
    name: str
    profit_usd: float
    switches: int
    modes: np.ndarray  # (T, n) mode index per hour and device
    hourly_profit: np.ndarray  # (T,)


@dataclass(frozen=True)
class BacktestResult:
    outcomes: dict[str, PolicyOutcome]
    device_ids: tuple[str, ...]
    kinds: tuple[str, ...]
    times: tuple[Any, ...]
    power_usd_per_mwh: np.ndarray
    btc_usd: np.ndarray
    assumptions: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[DataIssue, ...] = ()  # what aligning the input dropped, filled or estimated

    def pct_of_optimum(self, name: str) -> float:
        bound = self.outcomes.get("perfect_foresight")
        best = bound.profit_usd if bound is not None else 0.0
        return 100.0 * self.outcomes[name].profit_usd / best if best else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "policies": {
                name: {
                    "profit_usd": round(o.profit_usd, 2),
                    "switches": o.switches,
                    "pct_of_optimum": round(self.pct_of_optimum(name), 2),
                }
                for name, o in self.outcomes.items()
            },
            "assumptions": self.assumptions,
            "warnings": [w.to_dict() for w in self.warnings],
        }


def initial_modes(arrays: FleetArrays) -> np.ndarray:
    """Everything starts switched off: GPUs idle, ASICs curtailed."""
    return np.where(arrays.is_gpu, IDLE, CURTAILED)


def _fixed(arrays: FleetArrays, gpu_mode: int) -> np.ndarray:
    return np.where(arrays.is_gpu, gpu_mode, MINING)


def run_backtest(
    history: MarketHistory,
    spec: FleetSpec,
    params: PolicyParams | None = None,
    policies: Sequence[str] = POLICIES,
) -> BacktestResult:
    params = params or PolicyParams()
    devices, facilities = from_fleet_spec(spec, params.economics)
    return run_backtest_devices(history, devices, facilities, params, policies)


def run_backtest_devices(
    history: MarketHistory,
    devices: Sequence[DeviceEconomics],
    facilities: Sequence[FacilityEconomics],
    params: PolicyParams,
    policies: Sequence[str] = POLICIES,
) -> BacktestResult:
    fac_names = [f.name for f in facilities]
    ticks = [history.tick(i, fac_names) for i in range(len(history))]
    # The optimum may rent GPUs out when a renting policy is compared against it.
    renting = bool(_RENTING & set(policies))
    arrays = FleetArrays(devices, facilities, params.gpu_may_power_down, renting or params.gpu_may_rent)
    profit = np.empty((len(ticks), arrays.n, len(MODES)))
    cost = np.empty_like(profit)
    for t, tick in enumerate(ticks):
        p, rev = arrays.profit(tick)
        profit[t], cost[t] = p, arrays.switch_cost(rev)
    start = initial_modes(arrays)
    outcomes: dict[str, PolicyOutcome] = {}
    for name in policies:
        if name == "perfect_foresight":
            opt = perfect_foresight(arrays, profit, cost, start)
            outcomes[name] = PolicyOutcome(name, opt.profit_usd, opt.switches, opt.modes,
                                           opt.hourly_profit)
        elif name in ("always_mine", "always_inference", "always_rent"):
            gpu_mode = {"always_mine": MINING, "always_inference": INFERENCE,
                        "always_rent": RENTED}[name]
            want = _fixed(arrays, gpu_mode)
            outcomes[name] = _account(name, arrays, profit, cost, start,
                                      lambda t, cur, w=want: enforce_caps(arrays, w, profit[t])[0])
        elif name in ("greedy", "hcp", "hcp_rent"):
            p = PolicyParams.greedy(params.economics) if name == "greedy" else params
            p = p.with_(gpu_may_rent=name == "hcp_rent" or params.gpu_may_rent)
            policy = FleetPolicy(devices, facilities, p)
            outcomes[name] = _account(
                name, arrays, profit, cost, start,
                lambda t, cur, pol=policy: pol.step(ticks[t], cur, ticks[t].at).modes,
            )
        else:
            raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")
    assumptions = {
        **history.describe(),
        "policy": params.describe(),
        "fleet": {
            "devices": len(devices),
            "facilities": [{"name": f.name, "capacity_w": f.capacity_w, "pue": f.pue}
                           for f in facilities],
            "power_series_applies_to": fac_names,
        },
        "initial_modes": "GPUs IDLE, ASICs CURTAILED",
        "switching_cost": "switch time x revenue rate of the mode switched into",
        "gpu_inference_power": "idle_w + utilization x (power_w - idle_w)",
        "gpu_rental": {
            "price": "the GPU price level per model of the gpu_prices file (2024 snapshots by "
                     "default), the price a provider offers its GPU at",
            "occupancy": params.economics.gpu_rental_occupancy,
            "provider_share_pct": (10_000 - params.economics.rental_fee_bps) / 100,
            "revenue": "price x occupancy x provider share, per GPU-hour offered",
            "power": "idle_w + occupancy x (power_w - idle_w)",
            "policies": "always_rent offers every GPU for rent; hcp_rent is the hcp policy with "
                        "renting as a third GPU option",
        },
    }
    return BacktestResult(
        outcomes=outcomes,
        device_ids=arrays.ids,
        kinds=tuple("gpu" if g else "asic" for g in arrays.is_gpu),
        times=tuple(t.at for t in ticks),
        power_usd_per_mwh=history.power_usd_per_mwh[: len(ticks)],
        btc_usd=history.hourly.btc_usd[: len(ticks)],
        assumptions=assumptions,
        warnings=history.issues,
    )


def _account(name: str, arrays: FleetArrays, profit: np.ndarray, cost: np.ndarray,
             start: np.ndarray, choose: Any) -> PolicyOutcome:
    T, n = profit.shape[0], arrays.n
    rows = np.arange(n)
    modes = np.empty((T, n), dtype=np.int64)
    hourly = np.empty(T)
    cur = start.copy()
    switches = 0
    for t in range(T):
        new = np.asarray(choose(t, cur))
        changed = new != cur
        switches += int(changed.sum())
        hourly[t] = profit[t, rows, new].sum() - cost[t, rows, new][changed].sum()
        modes[t] = cur = new
    return PolicyOutcome(name, float(hourly.sum()), switches, modes, hourly)

