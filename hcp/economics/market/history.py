"""Historical series, read in exactly the formats and column names of the real data files.

- BTC daily (Glassnode): ``date, open_usd, ..., close_usd, hash_rate_mean_H_per_s,
  total_fees_btc_per_day, new_btc_issued_per_day, ...``
- Difficulty epochs: ``height, ..., time_utc, ..., difficulty, ...`` (one row per retarget)
- Day-ahead power (ENTSO-E): ``time_utc, time_local_europe_brussels, price_eur_per_mwh, ...``
- GPU rental offers: ``snapshot_commit_time, commit, provider, gpu, maker, vram_gb, usd_per_hour, link``

What a decision at hour t may know: the day's opening BTC price, the difficulty of
the current epoch, the previous day's mean fees per block, the current power price
and the day-ahead prices already published (see ``PUBLISH_HOUR_LOCAL``).
"""

from __future__ import annotations

import logging
from datetime import date
from importlib import resources
from pathlib import Path

import polars as pl

from hcp.errors import MarketDataError

log = logging.getLogger(__name__)

# The day-ahead auction for day D+1 clears at noon Brussels time on day D and its
# results are published around 12:45; from 13:00 local we treat them as known.
PUBLISH_HOUR_LOCAL = 13

# Block subsidy by halving date (heights 210000, 420000, 630000).
_HALVINGS: tuple[tuple[date, float], ...] = (
    (date(2012, 11, 28), 25.0),
    (date(2016, 7, 9), 12.5),
    (date(2020, 5, 11), 6.25),
    (date(2024, 4, 20), 3.125),
)


def block_subsidy_btc(day: date) -> float:
    subsidy = 50.0
    for start, value in _HALVINGS:
        if day >= start:
            subsidy = value
    return subsidy


def packaged(name: str) -> Path:
    """Path of a series shipped with hcp (``hcp/data/market``)."""
    return Path(str(resources.files("hcp").joinpath("data", "market", name)))


DEFAULT_BTC_DAILY = "btc_daily_2021_2022h1.csv"
DEFAULT_DIFFICULTY = "btc_difficulty_epochs_to_2022h1.csv"
DEFAULT_POWER = "electricity_be_hourly_2022h1.csv"
DEFAULT_GPU_PRICES = "gpu_rental_prices_2024.csv"


def _read(path: str | Path, columns: tuple[str, ...], what: str) -> pl.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise MarketDataError(f"{what}: no such file {path}", path=str(path))
    try:
        df = pl.read_csv(path, infer_schema_length=0)  # all strings; parsed explicitly below
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise MarketDataError(f"{what}: cannot read {path}: {exc}", path=str(path)) from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MarketDataError(f"{what} {path}: missing column(s) {', '.join(missing)}",
                              path=str(path), missing=missing)
    return df


def _floats(df: pl.DataFrame, col: str, what: str, strict: bool = True) -> pl.Series:
    s = df[col].cast(pl.Float64, strict=False)
    if strict and s.null_count() > df[col].null_count():
        raise MarketDataError(f"{what}: non-numeric values in column {col}", column=col)
    return s


def load_btc_daily(path: str | Path) -> pl.DataFrame:
    """date, btc_open_usd, fees_per_block_btc (the same day's mean), subsidy_btc."""
    what = "BTC daily series"
    df = _read(path, ("date", "open_usd", "hash_rate_mean_H_per_s", "total_fees_btc_per_day",
                      "new_btc_issued_per_day"), what)
    try:
        days = df["date"].str.to_date("%Y-%m-%d")
    except pl.exceptions.PolarsError:
        raise MarketDataError(f"{what}: column date must be YYYY-MM-DD") from None
    out = pl.DataFrame({
        "date": days,
        "btc_open_usd": _floats(df, "open_usd", what),
        "hash_rate": _floats(df, "hash_rate_mean_H_per_s", what),
        "fees_day": _floats(df, "total_fees_btc_per_day", what),
        "issued_day": _floats(df, "new_btc_issued_per_day", what, strict=False),
    }).sort("date")
    if out.height == 0:
        raise MarketDataError(f"{what}: no rows")
    dupes = out.filter(out["date"].is_duplicated())["date"].unique().sort().to_list()
    if dupes:
        raise MarketDataError(f"{what}: duplicate day(s) {', '.join(d.isoformat() for d in dupes[:6])}",
                              days=[d.isoformat() for d in dupes])
    subsidy = [block_subsidy_btc(d) for d in out["date"].to_list()]
    out = out.with_columns(pl.Series("subsidy_btc", subsidy, dtype=pl.Float64))
    if out["btc_open_usd"].min() <= 0:  # type: ignore[operator]
        raise MarketDataError(f"{what}: prices must be positive")
    return out


def load_difficulty(path: str | Path) -> pl.DataFrame:
    """time (UTC) of each retarget and the difficulty from then on."""
    what = "difficulty epochs"
    df = _read(path, ("time_utc", "difficulty"), what)
    try:
        times = df["time_utc"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
    except pl.exceptions.PolarsError:
        raise MarketDataError(f"{what}: time_utc must be like 2022-06-08T11:07:28Z") from None
    out = pl.DataFrame({"time": times, "difficulty": _floats(df, "difficulty", what)}).sort("time")
    if out["difficulty"].null_count() or out["time"].null_count():
        raise MarketDataError(f"{what}: a row without a time or a difficulty")
    if out.height == 0:
        raise MarketDataError(f"{what}: no rows")
    if out["difficulty"].min() <= 0:  # type: ignore[operator]
        raise MarketDataError(f"{what}: difficulty must be positive")
    return out


def load_power(path: str | Path) -> pl.DataFrame:
    """time (UTC, hourly), price_eur_per_mwh, local_date of the delivery day, local_hour."""
    what = "power price series"
    df = _read(path, ("time_utc", "time_local_europe_brussels", "price_eur_per_mwh"), what)
    try:
        times = df["time_utc"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
        local = df["time_local_europe_brussels"].str.to_datetime("%Y-%m-%d %H:%M")
    except pl.exceptions.PolarsError:
        raise MarketDataError(f"{what}: unexpected time format") from None
    out = pl.DataFrame({
        "time": times,
        "price_eur_per_mwh": _floats(df, "price_eur_per_mwh", what),
        "local_date": local.dt.date(),
        "local_hour": local.dt.hour(),
    }).sort("time")
    if out["time"].is_duplicated().any():
        raise MarketDataError(f"{what}: duplicate hours")
    if out.height == 0:
        raise MarketDataError(f"{what}: no rows")
    if ((out["time"].dt.minute() != 0) | (out["time"].dt.second() != 0)).any():
        raise MarketDataError(f"{what}: hourly prices expected (a time_utc is not on the hour)")
    return out
