"""Market data: typed price ticks and where they come from (simulator, replay, live adapters)."""

from hcp.economics.market.replay import DEFAULT_EUR_USD, MarketHistory, ReplayFeed
from hcp.economics.market.simulator import MarketSimulator, SimulatorParams
from hcp.economics.market.source import LiveFeed, LiveQuotes, PriceFeed
from hcp.economics.market.tick import PriceTick

__all__ = [
    "DEFAULT_EUR_USD",
    "LiveFeed",
    "LiveQuotes",
    "MarketHistory",
    "MarketSimulator",
    "PriceFeed",
    "PriceTick",
    "ReplayFeed",
    "SimulatorParams",
]
