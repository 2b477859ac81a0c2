"""Market data: typed price ticks and where they come from (simulator, replay, live adapters).

The names load on first use (PEP 562): the replay and the alignment need polars, which a
command that only reads the fleet (``hcp status``) should not pay for at start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "DEFAULT_EUR_USD": "replay", "MarketHistory": "replay", "ReplayFeed": "replay",
    "MarketSimulator": "simulator", "SimulatorParams": "simulator",
    "LiveFeed": "source", "LiveQuotes": "source", "PriceFeed": "source",
    "PriceTick": "tick",
}

if TYPE_CHECKING:
    from hcp.economics.market.replay import DEFAULT_EUR_USD, MarketHistory, ReplayFeed
    from hcp.economics.market.simulator import MarketSimulator, SimulatorParams
    from hcp.economics.market.source import LiveFeed, LiveQuotes, PriceFeed
    from hcp.economics.market.tick import PriceTick


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


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
