"""The backtest sweep spread across Ray tasks: one task per (threshold, dwell) point."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import ray

from actors.options import sweep_task_options
from hcp.economics.backtest.sweep import SweepPoint, evaluate_point
from hcp.economics.devices import DeviceEconomics, FacilityEconomics
from hcp.economics.market.replay import MarketHistory
from hcp.economics.policy.params import PolicyParams

log = logging.getLogger(__name__)


@ray.remote
def _evaluate(history: MarketHistory, devices: Sequence[DeviceEconomics],
              facilities: Sequence[FacilityEconomics], base: PolicyParams,
              point: SweepPoint) -> dict[str, Any]:
    return evaluate_point(history, devices, facilities, base, point)


def ray_mapper(history: MarketHistory, devices: Sequence[DeviceEconomics],
               facilities: Sequence[FacilityEconomics], base: PolicyParams,
               points: Sequence[SweepPoint]) -> list[dict[str, Any]]:
    """Fan the grid out as Ray tasks; the price history is put in the object store once."""
    refs = [ray.put(x) for x in (history, list(devices), list(facilities), base)]
    task = _evaluate.options(**sweep_task_options())
    futures = [task.remote(*refs, p) for p in points]
    log.info("sweep: %d Ray tasks submitted", len(futures))
    return ray.get(futures)
