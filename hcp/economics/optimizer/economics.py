"""Expected USD/hour per device and mode, priced by the policy's own vectorized fleet model."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hcp.economics import from_fleet_spec
from hcp.economics.market.tick import PriceTick
from hcp.economics.policy.params import PolicyParams
from hcp.economics.policy.profit import MODES, FleetArrays
from hcp.fleet.spec import FleetSpec


class FleetProfit:
    """``ProfitModel`` over ``FleetArrays``: the same economics the policy decides with."""

    def __init__(self, arrays: FleetArrays) -> None:
        self._arrays = arrays

    @classmethod
    def from_fleet_spec(cls, spec: FleetSpec, params: PolicyParams | None = None) -> FleetProfit:
        params = params or PolicyParams()
        devices, facilities = from_fleet_spec(spec, params.economics)
        return cls(FleetArrays(devices, facilities, gpu_may_power_down=params.gpu_may_power_down))

    def rates(self, tick: PriceTick) -> Mapping[str, Mapping[str, float]]:
        profit, _rev = self._arrays.profit(tick)
        return self._by_device(profit)

    def revenue_rates(self, tick: PriceTick) -> Mapping[str, Mapping[str, float]]:
        profit, rev = self._arrays.profit(tick)
        return self._by_device(np.where(np.isfinite(profit), rev, np.nan))

    def _by_device(self, values: np.ndarray) -> Mapping[str, Mapping[str, float]]:
        names = [m.value for m in MODES]
        ok = np.isfinite(values)
        return {dev: {names[j]: float(values[i, j]) for j in range(len(names)) if ok[i, j]}
                for i, dev in enumerate(self._arrays.ids)}
