"""A seeded market simulator: random walks with realistic volatility and power-price spikes.

Levels default to mid-2022 figures of the real series (BTC ~ $30k, difficulty ~ 30 T,
Belgian day-ahead power ~ 200 USD/MWh, GPU prices from the 2024 snapshot medians).
Volatility is annualized: BTC about 70 %/yr, power mean-reverting in log space
with rare multiplicative spikes (the 2022 series spiked to 2-3x its median).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from hcp.economics.market.tick import PriceTick
from hcp.errors import ValidationError

log = logging.getLogger(__name__)

_YEAR_S = 365.25 * 86_400
_EPOCH_S = 2016 * 600  # one difficulty retarget every 2016 blocks of ~10 minutes


@dataclass(frozen=True)
class SimulatorParams:
    btc_usd: float = 30_000.0
    btc_vol_annual: float = 0.70
    difficulty: float = 30e12
    difficulty_step_sd: float = 0.03  # relative change per retarget
    block_subsidy_btc: float = 6.25
    fees_per_block_btc: float = 0.1
    power_usd_per_mwh: float = 200.0
    power_vol_annual: float = 3.0  # hourly power prices are far more volatile than BTC
    power_reversion_per_day: float = 2.0  # pull of log price back to its mean
    spike_rate_per_day: float = 0.5
    spike_factor: float = 2.5
    spike_half_life_s: float = 2 * 3600.0
    gpu_usd_per_hour: Mapping[str, float] = field(
        default_factory=lambda: {"H100": 3.44, "H200": 3.8, "A100": 2.2, "L40S": 1.09, "L4": 0.38,
                                 "RTX 4090": 0.54, "A10": 0.75}
    )
    gpu_vol_annual: float = 0.2


class MarketSimulator:
    """Implements ``PriceFeed``: each call advances the walk to ``now`` and emits a tick."""

    def __init__(
        self,
        seed: int,
        facilities: Sequence[str],
        params: SimulatorParams | None = None,
        min_interval_s: float = 0.0,
    ) -> None:
        if not facilities:
            raise ValidationError("the simulator needs at least one facility to price")
        self.params = params or SimulatorParams()
        self._rng = np.random.default_rng(seed)
        self._facilities = tuple(facilities)
        self._min_interval_s = min_interval_s
        p = self.params
        self._btc = p.btc_usd
        self._difficulty = p.difficulty
        self._log_power = {f: math.log(p.power_usd_per_mwh) for f in facilities}
        self._spike = {f: 1.0 for f in facilities}
        self._gpu = dict(p.gpu_usd_per_hour)
        self._last: datetime | None = None
        self._since_retarget = 0.0

    def next_tick(self, now: datetime) -> PriceTick | None:
        if self._last is not None:
            dt = (now - self._last).total_seconds()
            if dt <= 0 or dt < self._min_interval_s:
                return None
            self._advance(dt)
        self._last = now
        p = self.params
        return PriceTick(
            at=now,
            btc_usd=self._btc,
            difficulty=self._difficulty,
            block_subsidy_btc=p.block_subsidy_btc,
            fees_per_block_btc=p.fees_per_block_btc,
            power_usd_per_mwh={f: math.exp(v) * self._spike[f] for f, v in self._log_power.items()},
            gpu_usd_per_hour=dict(self._gpu),
        )

    def _advance(self, dt: float) -> None:
        p, rng = self.params, self._rng
        years = dt / _YEAR_S
        self._btc *= math.exp(p.btc_vol_annual * math.sqrt(years) * rng.standard_normal()
                              - 0.5 * p.btc_vol_annual**2 * years)
        mean = math.log(p.power_usd_per_mwh)
        theta = p.power_reversion_per_day * dt / 86_400
        for f in self._facilities:
            x = self._log_power[f]
            x += theta * (mean - x) + p.power_vol_annual * math.sqrt(years) * rng.standard_normal()
            self._log_power[f] = x
            decay = 0.5 ** (dt / p.spike_half_life_s)
            spike = 1.0 + (self._spike[f] - 1.0) * decay
            if rng.random() < 1.0 - math.exp(-p.spike_rate_per_day * dt / 86_400):
                spike *= p.spike_factor
            self._spike[f] = spike
        for model in self._gpu:
            self._gpu[model] *= math.exp(p.gpu_vol_annual * math.sqrt(years) * rng.standard_normal())
        self._since_retarget += dt
        while self._since_retarget >= _EPOCH_S:
            self._since_retarget -= _EPOCH_S
            self._difficulty *= math.exp(p.difficulty_step_sd * rng.standard_normal())
