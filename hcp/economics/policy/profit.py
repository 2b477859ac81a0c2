"""The fleet as numpy arrays, and expected profit per device and mode for a tick."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from hcp.economics.devices import DeviceEconomics, FacilityEconomics
from hcp.economics.formulas import HASHES_PER_DIFFICULTY, SECONDS_PER_HOUR
from hcp.economics.market.tick import PriceTick
from hcp.errors import MarketDataError, ValidationError
from hcp.fleet.modes import GpuMode

log = logging.getLogger(__name__)

MODES: tuple[GpuMode, ...] = (GpuMode.MINING, GpuMode.INFERENCE, GpuMode.IDLE, GpuMode.CURTAILED,
                              GpuMode.RENTED)
MINING, INFERENCE, IDLE, CURTAILED, RENTED = range(5)
MODE_INDEX: dict[str, int] = {m.value: i for i, m in enumerate(MODES)}


class FleetArrays:
    """Column arrays of the fleet, so one tick is priced for every device at once."""

    def __init__(
        self,
        devices: Sequence[DeviceEconomics],
        facilities: Sequence[FacilityEconomics],
        gpu_may_power_down: bool = False,
        gpu_may_rent: bool = False,
    ) -> None:
        if not devices:
            raise ValidationError("a policy needs at least one device")
        self.devices = tuple(devices)
        self.facilities = tuple(facilities)
        self.ids: tuple[str, ...] = tuple(d.device_id for d in devices)
        if len(set(self.ids)) != len(self.ids):
            raise ValidationError("device ids must be unique")
        fac_index = {f.name: i for i, f in enumerate(facilities)}
        missing = sorted({d.facility for d in devices} - set(fac_index))
        if missing:
            raise ValidationError(f"devices refer to unknown facilities: {', '.join(missing)}")
        n = len(devices)
        self.n = n
        self.fac_names = tuple(f.name for f in facilities)
        self.fac = np.fromiter((fac_index[d.facility] for d in devices), dtype=np.int64, count=n)
        self.capacity_w = np.array([f.capacity_w for f in facilities], dtype=np.float64)
        self.pue = np.array([f.pue for f in facilities], dtype=np.float64)[self.fac]
        self.is_gpu = np.fromiter((d.kind == "gpu" for d in devices), dtype=bool, count=n)
        self.hashrate = np.fromiter((d.hashrate_hs for d in devices), dtype=np.float64, count=n)
        self.util = np.fromiter((d.utilization for d in devices), dtype=np.float64, count=n)
        self.switch_h = np.fromiter((d.switch_seconds for d in devices), np.float64, n) / 3600.0
        self.gpu_models = tuple(sorted({d.model for d in devices if d.kind == "gpu"}))
        model_index = {m: i for i, m in enumerate(self.gpu_models)}
        self.model = np.fromiter(
            (model_index.get(d.model, -1) if d.kind == "gpu" else -1 for d in devices), np.int64, n
        )
        # IT watts in each mode; modes a device cannot be in cost nothing and are masked out.
        self.it_w = np.zeros((n, len(MODES)))
        self.it_w[:, MINING] = [d.active_w for d in devices]
        self.it_w[:, INFERENCE] = np.where(self.is_gpu, [d.inference_w for d in devices], 0.0)
        self.it_w[:, IDLE] = np.where(self.is_gpu, [d.idle_w for d in devices], 0.0)
        self.it_w[:, RENTED] = np.where(self.is_gpu, [d.rented_w for d in devices], 0.0)
        self.occupancy = np.fromiter((d.rental_occupancy for d in devices), np.float64, n)
        self.provider_share = np.fromiter((1.0 - d.rental_fee_bps / 10_000 for d in devices),
                                          np.float64, n)
        self.grid_w = self.it_w * self.pue[:, None]
        # Modes a device may physically be in, and modes the policy may choose for it.
        self.possible = np.ones((n, len(MODES)), dtype=bool)
        self.possible[~self.is_gpu, INFERENCE] = False
        self.possible[~self.is_gpu, IDLE] = False
        self.possible[~self.is_gpu, RENTED] = False
        self.candidate = self.possible.copy()
        if not gpu_may_power_down:
            self.candidate[self.is_gpu, CURTAILED] = False
        if not gpu_may_rent:
            # Live, a GPU is RENTED only while a job holds it (the agent's hold): the policy
            # prices renting but does not choose it unless told (backtests of a renting fleet).
            self.candidate[:, RENTED] = False
        self._impossible = np.where(self.possible, 0.0, -np.inf)  # added, not masked: one pass
        self.not_candidate = np.where(self.candidate, 0.0, -np.inf)
        self._warned_models: set[str] = set()

    # --- prices ------------------------------------------------------------------

    def power_price(self, tick: PriceTick) -> np.ndarray:
        """USD/MWh per facility."""
        try:
            return np.array([tick.power_usd_per_mwh[f] for f in self.fac_names], dtype=np.float64)
        except KeyError as exc:
            raise MarketDataError(f"tick has no power price for facility {exc.args[0]!r}",
                                  facility=exc.args[0]) from None

    def revenue(self, tick: PriceTick) -> np.ndarray:
        """Expected USD per hour per device and mode (n, modes)."""
        rev = np.zeros((self.n, len(MODES)))
        usd_per_hash = tick.block_reward_btc / (tick.difficulty * HASHES_PER_DIFFICULTY) * tick.btc_usd
        rev[:, MINING] = self.hashrate * SECONDS_PER_HOUR * usd_per_hash
        if self.gpu_models:
            prices = np.zeros(len(self.gpu_models) + 1)  # last slot: devices with no model (-1)
            for i, model in enumerate(self.gpu_models):
                price = tick.gpu_usd_per_hour.get(model)
                if price is None:
                    if model not in self._warned_models:
                        self._warned_models.add(model)
                        log.warning("no GPU price for model %s: its inference earns nothing", model)
                    price = 0.0
                prices[i] = price
            rev[:, INFERENCE] = np.where(self.is_gpu, prices[self.model] * self.util, 0.0)
            rev[:, RENTED] = np.where(self.is_gpu, prices[self.model] * self.occupancy
                                      * self.provider_share, 0.0)
        return rev

    def profit(self, tick: PriceTick) -> tuple[np.ndarray, np.ndarray]:
        """(profit USD/h (n, modes) with -inf where a mode is impossible, revenue (n, modes))."""
        rev = self.revenue(tick)
        price = self.power_price(tick)[self.fac]
        profit = rev - self.grid_w * (price / 1e6)[:, None]
        profit += self._impossible
        return profit, rev

    def switch_cost(self, rev: np.ndarray) -> np.ndarray:
        """USD lost switching INTO each mode (n, modes): the switch time earns nothing."""
        return self.switch_h[:, None] * np.maximum(rev, 0.0)

    def forecast_prices(self, tick: PriceTick) -> tuple[np.ndarray, np.ndarray]:
        """(published future prices (H, facilities) NaN-padded, horizon length per facility)."""
        series = [tuple(tick.power_forecast_usd_per_mwh.get(f, ())) for f in self.fac_names]
        lengths = np.array([len(s) for s in series], dtype=np.int64)
        out = np.full((int(lengths.max(initial=0)), len(series)), np.nan)
        for j, s in enumerate(series):
            out[: len(s), j] = s
        return out, lengths
