"""The typed price tick every market source produces and every policy reads."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from hcp.errors import MarketDataError


@dataclass(frozen=True)
class PriceTick:
    """Everything a decision needs to know about prices at one instant.

    ``power_forecast_usd_per_mwh`` holds, per facility, the hourly prices already
    *published* for the hours after ``at`` (day-ahead auctions publish the next
    day's prices around noon), starting with the hour that follows ``at``'s hour.
    A source that knows nothing about the future leaves it empty; nothing in it
    may be information that was not public at ``at``.
    """

    at: datetime  # UTC, aware
    btc_usd: float
    difficulty: float
    block_subsidy_btc: float
    fees_per_block_btc: float
    power_usd_per_mwh: Mapping[str, float]  # per facility name, already in USD
    gpu_usd_per_hour: Mapping[str, float]  # per GPU model ("H100")
    power_forecast_usd_per_mwh: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise MarketDataError("tick time must be timezone-aware (UTC)", at=str(self.at))
        problems = [
            name
            for name, value in (
                ("btc_usd", self.btc_usd),
                ("difficulty", self.difficulty),
            )
            if not value > 0
        ]
        problems += [
            name
            for name, value in (
                ("block_subsidy_btc", self.block_subsidy_btc),
                ("fees_per_block_btc", self.fees_per_block_btc),
            )
            if not value >= 0
        ]
        problems += [f"gpu_usd_per_hour[{k}]" for k, v in self.gpu_usd_per_hour.items() if not v >= 0]
        # Negative power prices are real (renewable surplus hours) and allowed; NaN is not.
        problems += [f"power_usd_per_mwh[{k}]" for k, v in self.power_usd_per_mwh.items() if math.isnan(v)]
        if problems:
            raise MarketDataError(f"invalid price tick at {self.at.isoformat()}: {', '.join(problems)}",
                                  fields=problems)

    @property
    def block_reward_btc(self) -> float:
        return self.block_subsidy_btc + self.fees_per_block_btc
