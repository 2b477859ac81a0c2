"""The live optimizer's feed and policy knobs, from the settings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from hcp.config import Settings
from hcp.economics.market import MarketHistory, MarketSimulator, PriceFeed, PriceTick
from hcp.economics.policy import PolicyParams
from hcp.fleet.spec import FleetSpec

log = logging.getLogger(__name__)


class SteppedReplay:
    """The real hourly series, one historical hour per optimizer step.

    Ticks carry their historical time, so decision ids and dwell are in market time. After a
    restart ``resume_after`` moves past the last hour already processed instead of replaying
    the year from its start.
    """

    def __init__(self, history: MarketHistory, facilities: Sequence[str], forecast: bool = True) -> None:
        self._history = history
        self._facilities = tuple(facilities)
        self._forecast = forecast
        self._next = 0

    def next_tick(self, now: datetime) -> PriceTick | None:
        if self._next >= len(self._history):
            return None  # the series has ended: no new data
        tick = self._history.tick(self._next, self._facilities, self._forecast)
        self._next += 1
        return tick

    def resume_after(self, tick_at: datetime) -> None:
        at = self._history.hourly.at
        self._next = next((i for i, t in enumerate(at) if t > tick_at), len(at))
        log.info("replay resumes at hour %d of %d", self._next, len(at))


def make_feed(settings: Settings, spec: FleetSpec) -> PriceFeed:
    """The feed ``settings.optimizer.feed`` names, pricing every facility of the fleet."""
    facilities = [f.name for f in spec.facilities]
    if settings.optimizer.feed == "replay":
        return SteppedReplay(MarketHistory.load(), facilities)
    return MarketSimulator(settings.optimizer.feed_seed, facilities)


def live_policy_params(settings: Settings) -> PolicyParams:
    """Hysteresis for the live loop: the backtest's rules with the live threshold and dwell."""
    return PolicyParams(threshold_pct=settings.optimizer.threshold_pct, dwell_s=settings.optimizer.dwell_seconds)
