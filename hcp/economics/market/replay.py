"""Replay of historical series as a ``PriceFeed`` and as a list of ticks for the backtest."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from hcp.economics.market.align import HourlySeries, build_hourly
from hcp.economics.market.epochs import DifficultyBeyond
from hcp.economics.market.gpu_prices import GpuPriceLevels, load_gpu_prices
from hcp.economics.market.history import (
    DEFAULT_BTC_DAILY,
    DEFAULT_DIFFICULTY,
    DEFAULT_GPU_PRICES,
    DEFAULT_POWER,
    load_btc_daily,
    load_difficulty,
    load_power,
    packaged,
)
from hcp.economics.market.quality import DataIssue
from hcp.economics.market.tick import PriceTick
from hcp.errors import MarketDataError

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
        difficulty_beyond: DifficultyBeyond | str = DifficultyBeyond.HOLD,
        strict: bool = False,
    ) -> MarketHistory:
        """Load files in the formats of the shipped data; None picks the packaged copy.

        Every hour dropped and every value filled while aligning them is in ``issues``;
        ``strict`` makes any of them a ``MarketDataGapError``. ``difficulty_beyond`` says what
        the hours after the difficulty file's last epoch get (``hold``, the default, or
        ``project`` from the hash-rate series).
        """
        if not eur_usd > 0:
            raise MarketDataError("eur_usd must be positive", eur_usd=eur_usd)
        try:
            mode = DifficultyBeyond(difficulty_beyond)
        except ValueError:
            raise MarketDataError(f"difficulty_beyond must be one of "
                                  f"{', '.join(m.value for m in DifficultyBeyond)}") from None
        hourly = build_hourly(
            load_btc_daily(btc_daily or packaged(DEFAULT_BTC_DAILY)),
            load_difficulty(difficulty or packaged(DEFAULT_DIFFICULTY)),
            load_power(power or packaged(DEFAULT_POWER)),
            difficulty_beyond=mode,
            strict=strict,
        )
        gpu = load_gpu_prices(gpu_prices or packaged(DEFAULT_GPU_PRICES))
        return cls(hourly, gpu, eur_usd)

    def __len__(self) -> int:
        return len(self.hourly)

    @property
    def issues(self) -> tuple[DataIssue, ...]:
        """What aligning the series dropped, filled or estimated (empty: nothing)."""
        return self.hourly.issues

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
            "difficulty_beyond_file": {
                "hold": "the last epoch's difficulty held constant (default)",
                "project": "projected from the BTC series' block rate by the 2016-block retarget rule",
            }[h.difficulty_beyond.value],
            "hours_beyond_difficulty_file": int(h.beyond_difficulty_file.sum()),
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
