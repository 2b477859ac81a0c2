"""Replay of historical series as a ``PriceFeed`` and as a list of ticks for the backtest."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from hcp.errors import MarketDataError
from hcp.market.gpu_prices import GpuPriceLevels, load_gpu_prices
from hcp.market.history import (
    DEFAULT_BTC_DAILY,
    DEFAULT_DIFFICULTY,
    DEFAULT_GPU_PRICES,
    DEFAULT_POWER,
    HourlySeries,
    build_hourly,
    load_btc_daily,
    load_difficulty,
    load_power,
    packaged,
)
from hcp.market.tick import PriceTick

log = logging.getLogger(__name__)

DEFAULT_EUR_USD = 1.0934  # ECB reference rate, mean of 2022H1 (explicit assumption)


@dataclass(frozen=True)
class MarketHistory:
    """The four real series aligned hour by hour, with the assumptions used to price them."""

    hourly: HourlySeries
    gpu: GpuPriceLevels
    eur_usd: float

    @classmethod
    def load(
        cls,
        btc_daily: str | Path | None = None,
        difficulty: str | Path | None = None,
        power: str | Path | None = None,
        gpu_prices: str | Path | None = None,
        eur_usd: float = DEFAULT_EUR_USD,
    ) -> MarketHistory:
        """Load files in the formats of the shipped data; None picks the packaged copy."""
        if not eur_usd > 0:
            raise MarketDataError("eur_usd must be positive", eur_usd=eur_usd)
        hourly = build_hourly(
            load_btc_daily(btc_daily or packaged(DEFAULT_BTC_DAILY)),
            load_difficulty(difficulty or packaged(DEFAULT_DIFFICULTY)),
            load_power(power or packaged(DEFAULT_POWER)),
        )
        gpu = load_gpu_prices(gpu_prices or packaged(DEFAULT_GPU_PRICES))
        return cls(hourly, gpu, eur_usd)

    def __len__(self) -> int:
        return len(self.hourly)

    @property
    def power_usd_per_mwh(self) -> np.ndarray:
        return self.hourly.power_eur_per_mwh * self.eur_usd

    def tick(self, i: int, facilities: Sequence[str], forecast: bool = True) -> PriceTick:
        """The tick of hour ``i``; the forecast holds only day-ahead prices published by then."""
        h = self.hourly
        price = float(h.power_eur_per_mwh[i] * self.eur_usd)
        ahead: Mapping[str, tuple[float, ...]] = {}
        if forecast:
            published = tuple((h.power_eur_per_mwh[i + 1 : h.known_until[i]] * self.eur_usd).tolist())
            ahead = {f: published for f in facilities}
        return PriceTick(
            at=h.at[i],
            btc_usd=float(h.btc_usd[i]),
            difficulty=float(h.difficulty[i]),
            block_subsidy_btc=float(h.subsidy_btc[i]),
            fees_per_block_btc=float(h.fees_per_block_btc[i]),
            power_usd_per_mwh={f: price for f in facilities},
            gpu_usd_per_hour=dict(self.gpu.usd_per_hour),
            power_forecast_usd_per_mwh=ahead,
        )

    def describe(self) -> dict[str, object]:
        h = self.hourly
        return {
            "window_utc": [h.at[0].isoformat(), h.at[-1].isoformat()],
            "hours": len(h),
            "eur_usd": self.eur_usd,
            "power_series": "ENTSO-E day-ahead, bidding zone of the power file (BE by default)",
            "btc_price": "daily open (known at the start of each UTC day)",
            "fees_per_block": "previous day's total fees / blocks that day",
            "day_ahead_published_at_local_hour": 13,
            "gpu_prices": self.gpu.describe(),
        }


class ReplayFeed:
    """A ``PriceFeed`` that replays history: at ``now`` it emits the latest hour not yet emitted.

    Replayed against a simulated clock it drives the live optimizer with real 2022 prices.
    """

    def __init__(self, history: MarketHistory, facilities: Sequence[str], forecast: bool = True) -> None:
        if not facilities:
            raise MarketDataError("a replay feed needs at least one facility to price")
        self._history = history
        self._facilities = tuple(facilities)
        self._forecast = forecast
        self._times = np.array([t.timestamp() for t in history.hourly.at])
        self._last = -1

    def next_tick(self, now: datetime) -> PriceTick | None:
        i = int(np.searchsorted(self._times, now.timestamp(), side="right")) - 1
        if i < 0 or i == self._last:
            return None
        self._last = i
        return self._history.tick(i, self._facilities, self._forecast)
