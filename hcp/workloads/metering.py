"""Usage metering: GPU time in integer milliseconds, cost in integer micro-USD."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hcp.fleet.catalog import find_gpu, model_key

if TYPE_CHECKING:
    from hcp.config import Settings

MS_PER_HOUR = 3_600_000


def run_ms(start: datetime, end: datetime) -> int:
    """Whole milliseconds between two aware datetimes (0 if the clock went backwards)."""
    return max(0, (end - start) // timedelta(milliseconds=1))


def cost_micro_usd(gpu_ms: int, price_micro_usd_per_hour: int) -> int:
    """Cost of ``gpu_ms`` at an hourly price, rounded down to the micro-dollar (never over-bills)."""
    if gpu_ms < 0 or price_micro_usd_per_hour < 0:
        raise ValueError("metered time and price are never negative")
    return gpu_ms * price_micro_usd_per_hour // MS_PER_HOUR


@dataclass(frozen=True)
class PriceTable:
    """Price per GPU-hour by GPU model (names normalized like the fleet catalog)."""

    prices: Mapping[str, int] = field(default_factory=dict)
    default: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> PriceTable:
        return cls.of(settings.router.gpu_price_micro_usd_per_hour, settings.router.default_gpu_price_micro_usd_per_hour)

    @classmethod
    def of(cls, prices: Mapping[str, int], default: int) -> PriceTable:
        return cls({_key(k): int(v) for k, v in prices.items()}, int(default))

    def price_for(self, model: str | None) -> int:
        if model is None:
            return self.default
        return self.prices.get(_key(model), self.default)


def canonical_gpu_model(name: str) -> str:
    """One spelling per GPU model: the catalog name, else a case/punctuation-free key."""
    known = find_gpu(name)
    return known.name if known is not None else model_key(name)


def _key(model: str) -> str:
    return canonical_gpu_model(model)
