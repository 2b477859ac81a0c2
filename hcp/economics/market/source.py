"""Where ticks come from: the feed protocol and the adapter for live quote services."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

from hcp.economics.market.tick import PriceTick

log = logging.getLogger(__name__)


@runtime_checkable
class PriceFeed(Protocol):
    """A source of ticks, polled by the optimizer on its schedule."""

    def next_tick(self, now: datetime) -> PriceTick | None:
        """The tick for ``now``, or None when there is no new data since the last call."""
        ...


class LiveQuotes(Protocol):
    """What a live-data integration implements (exchange API, power-market API, GPU index).

    Each method returns the latest published figure; raise ``MarketDataError`` (or any
    ``HcpError``) when the upstream is unreachable. ``LiveFeed`` turns it into a feed.
    """

    def btc_usd(self) -> float: ...

    def network(self) -> tuple[float, float, float]:
        """(difficulty, block subsidy BTC, mean fees per block BTC)."""
        ...

    def power_usd_per_mwh(self) -> Mapping[str, float]: ...

    def gpu_usd_per_hour(self) -> Mapping[str, float]: ...


class LiveFeed:
    """A ``PriceFeed`` over a ``LiveQuotes`` adapter that emits at most one tick per interval."""

    def __init__(self, quotes: LiveQuotes, min_interval_s: float = 1.0) -> None:
        self._quotes = quotes
        self._min_interval_s = min_interval_s
        self._last: datetime | None = None

    def next_tick(self, now: datetime) -> PriceTick | None:
        if self._last is not None and (now - self._last).total_seconds() < self._min_interval_s:
            return None
        difficulty, subsidy, fees = self._quotes.network()
        tick = PriceTick(
            at=now,
            btc_usd=self._quotes.btc_usd(),
            difficulty=difficulty,
            block_subsidy_btc=subsidy,
            fees_per_block_btc=fees,
            power_usd_per_mwh=dict(self._quotes.power_usd_per_mwh()),
            gpu_usd_per_hour=dict(self._quotes.gpu_usd_per_hour()),
        )
        self._last = now
        return tick
