"""Price ticks to and from JSON, so a step's prices are stored with it and read back after a restart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hcp.economics.market.tick import PriceTick


def tick_to_dict(t: PriceTick) -> dict[str, Any]:
    return {
        "at": t.at.isoformat(),
        "btc_usd": t.btc_usd,
        "difficulty": t.difficulty,
        "block_subsidy_btc": t.block_subsidy_btc,
        "fees_per_block_btc": t.fees_per_block_btc,
        "power_usd_per_mwh": dict(t.power_usd_per_mwh),
        "gpu_usd_per_hour": dict(t.gpu_usd_per_hour),
        "power_forecast_usd_per_mwh": {k: list(v) for k, v in t.power_forecast_usd_per_mwh.items()},
    }


def tick_from_dict(d: dict[str, Any]) -> PriceTick:
    return PriceTick(
        at=datetime.fromisoformat(d["at"]),
        btc_usd=float(d["btc_usd"]),
        difficulty=float(d["difficulty"]),
        block_subsidy_btc=float(d["block_subsidy_btc"]),
        fees_per_block_btc=float(d["fees_per_block_btc"]),
        power_usd_per_mwh={k: float(v) for k, v in d["power_usd_per_mwh"].items()},
        gpu_usd_per_hour={k: float(v) for k, v in d["gpu_usd_per_hour"].items()},
        power_forecast_usd_per_mwh={k: tuple(float(x) for x in v)
                                    for k, v in d.get("power_forecast_usd_per_mwh", {}).items()},
    )
