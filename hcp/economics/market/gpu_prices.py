"""GPU rental price levels per model from the 2024 offer snapshots.

No public GPU rental history exists for 2022, so the backtest uses the 2024
snapshots as constant price *levels*: the median per-GPU hourly price of each
model across providers and snapshots. Rows that price a whole multi-GPU machine
("8x H100", "HGX") or carry text ("Enquire for pricing") are skipped, each with
its reason counted so the backtest can print it.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from hcp.economics.market.history import _read
from hcp.errors import MarketDataError
from hcp.fleet.catalog import find_gpu

log = logging.getLogger(__name__)

_MULTI = re.compile(r"^\s*(\d+)\s*x\s+", re.IGNORECASE)
_PARENS = re.compile(r"\([^)]*\)")
# Form factors and memory sizes that do not change the model's catalog entry.
_NOISE = re.compile(r"\b(pcie|sxm\d?|nvlink|\d+\s*gb|large)\b", re.IGNORECASE)
_VENDOR = re.compile(r"^((nvidia|tesla|amd)\s+)+", re.IGNORECASE)


@dataclass(frozen=True)
class GpuPriceLevels:
    usd_per_hour: dict[str, float]  # model -> median per-GPU price
    offers: dict[str, int]  # model -> number of per-GPU rows behind the median
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows

    def describe(self) -> dict[str, object]:
        return {"usd_per_hour": dict(self.usd_per_hour), "offers": dict(self.offers),
                "skipped_rows": dict(self.skipped),
                "note": "2024 snapshots used as constant price levels (median per-GPU offer)"}


def normalize_model(raw: str) -> tuple[str | None, str | None]:
    """(model name, None) for a per-GPU row, or (None, reason it is skipped)."""
    m = _MULTI.match(raw)
    if m and int(m.group(1)) != 1:
        return None, "whole multi-GPU machine"
    name = raw[m.end():] if m else raw
    if re.search(r"\bHGX\b", name, re.IGNORECASE):
        return None, "whole multi-GPU machine"
    cleaned = " ".join(_NOISE.sub(" ", _PARENS.sub(" ", name)).split())
    if not cleaned:
        return None, "no model name"
    cat = find_gpu(cleaned)
    if cat is not None:
        return cat.name, None
    return _VENDOR.sub("", cleaned).upper(), None


def load_gpu_prices(path: str | Path) -> GpuPriceLevels:
    what = "GPU rental prices"
    df = _read(path, ("gpu", "usd_per_hour"), what)
    prices = df["usd_per_hour"].cast(pl.Float64, strict=False)
    skipped: Counter[str] = Counter()
    per_model: dict[str, list[float]] = {}
    for gpu, price in zip(df["gpu"].to_list(), prices.to_list(), strict=True):
        if price is None or not price > 0:
            skipped["price is not a number"] += 1
            continue
        model, reason = normalize_model(gpu or "")
        if model is None:
            skipped[reason or "unknown"] += 1
            continue
        per_model.setdefault(model, []).append(float(price))
    if not per_model:
        raise MarketDataError(f"{what}: no per-GPU price rows in {path}")
    levels = {m: float(pl.Series(v).median()) for m, v in sorted(per_model.items())}  # type: ignore[arg-type]
    if skipped:
        log.info("GPU prices: skipped %s", dict(skipped))
    return GpuPriceLevels(levels, {m: len(v) for m, v in per_model.items()}, dict(skipped))
