"""Parameter sweep of the hcp policy over threshold x dwell (the grid; Ray spreads it out)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hcp.economics.backtest.engine import run_backtest_devices
from hcp.economics.devices import DeviceEconomics, FacilityEconomics
from hcp.economics.market.replay import MarketHistory
from hcp.economics.policy.params import PolicyParams


@dataclass(frozen=True)
class SweepPoint:
    threshold_pct: float
    dwell_hours: float


def grid(thresholds: Sequence[float], dwell_hours: Sequence[float]) -> list[SweepPoint]:
    return [SweepPoint(float(t), float(d)) for t in thresholds for d in dwell_hours]


def evaluate_point(
    history: MarketHistory,
    devices: Sequence[DeviceEconomics],
    facilities: Sequence[FacilityEconomics],
    base: PolicyParams,
    point: SweepPoint,
) -> dict[str, Any]:
    """The hcp policy's profit and switches at one grid point (one Ray task's work)."""
    params = base.with_(threshold_pct=point.threshold_pct, dwell_s=point.dwell_hours * 3600.0)
    res = run_backtest_devices(history, devices, facilities, params, policies=("hcp",))
    o = res.outcomes["hcp"]
    return {"threshold_pct": point.threshold_pct, "dwell_hours": point.dwell_hours,
            "profit_usd": round(o.profit_usd, 2), "switches": o.switches}


def run_local(
    history: MarketHistory,
    devices: Sequence[DeviceEconomics],
    facilities: Sequence[FacilityEconomics],
    base: PolicyParams,
    points: Sequence[SweepPoint],
    optimum_usd: float,
    mapper: Callable[..., list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every point, in process or through ``mapper`` (the Ray fan-out)."""
    if mapper is None:
        rows = [evaluate_point(history, devices, facilities, base, p) for p in points]
    else:
        rows = mapper(history, devices, facilities, base, points)
    for row in rows:
        row["pct_of_optimum"] = round(100.0 * row["profit_usd"] / optimum_usd, 2) if optimum_usd else None
    return rows
