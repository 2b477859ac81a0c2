"""The series joined hour by hour on the power file's hours, with every trim and fill reported.

An hour is kept only when everything a decision at that hour needs is known: the day's BTC
open, the fees of an earlier day, a difficulty. What cannot be had is dropped (and said),
what is carried from elsewhere is filled (and said); ``strict`` refuses both
(``hcp.economics.market.quality``).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from hcp.economics.market.epochs import DifficultyBeyond, Extension, extend_difficulty
from hcp.economics.market.history import PUBLISH_HOUR_LOCAL
from hcp.economics.market.quality import (
    Action,
    DataIssue,
    IssueKind,
    iso,
    named,
    refuse_gaps,
    report,
)
from hcp.errors import MarketDataError

log = logging.getLogger(__name__)

_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class HourlySeries:
    """Aligned hourly arrays: everything a tick at each hour carries."""

    at: tuple[datetime, ...]
    power_eur_per_mwh: np.ndarray
    btc_usd: np.ndarray
    difficulty: np.ndarray
    subsidy_btc: np.ndarray
    fees_per_block_btc: np.ndarray
    known_until: np.ndarray  # exclusive row index up to which power prices are published
    beyond_difficulty_file: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    issues: tuple[DataIssue, ...] = ()
    difficulty_beyond: DifficultyBeyond = DifficultyBeyond.HOLD

    def __len__(self) -> int:
        return len(self.at)


def _power_present(power: pl.DataFrame, issues: list[DataIssue]) -> pl.DataFrame:
    """The hours that carry a price; the ones missing inside the span are reported."""
    present = power.filter(pl.col("price_eur_per_mwh").is_not_null()
                           & pl.col("price_eur_per_mwh").is_not_nan())
    if present.height == 0:
        raise MarketDataError("power price series: no hour has a price")
    times = present["time"].to_list()
    spans = [(a + _HOUR, b - _HOUR) for a, b in itertools.pairwise(times) if b - a > _HOUR]
    missing = sum(int((b - a) / _HOUR) + 1 for a, b in spans)
    if missing:
        where = tuple(iso(a) if a == b else f"{iso(a)}..{iso(b)}" for a, b in spans)
        unpriced = power.height - present.height
        why = f" ({unpriced} listed without a price)" if unpriced else ""
        issues.append(DataIssue(
            IssueKind.MISSING_HOURS, "power", Action.MISSING, missing,
            f"{missing} hour(s) missing inside the window{why}, in {len(spans)} gap(s): "
            f"{named(where)}; the backtest runs without them and no forecast spans a gap",
            days=len({(a + k * _HOUR).date() for a, b in spans for k in range(int((b - a) / _HOUR) + 1)}),
            first=iso(spans[0][0]), last=iso(spans[-1][1]), where=where))
    return present


def _daily(btc: pl.DataFrame, epochs: pl.DataFrame) -> pl.DataFrame:
    """Per calendar day: the open, and the fees per block of the latest earlier day that has them."""
    day_difficulty = (epochs.with_columns(pl.col("time").dt.date().alias("date")).drop("time", "projected")
                      .unique("date", keep="last").sort("date"))
    counted = pl.col("issued_day").is_not_null() & (pl.col("issued_day") > 0)
    own = (
        btc.join_asof(day_difficulty, on="date", strategy="backward")
        .with_columns(
            pl.when(counted).then(pl.col("issued_day") / pl.col("subsidy_btc"))
            .otherwise(pl.col("hash_rate") * 86_400 / (pl.col("difficulty") * 2.0**32)).alias("blocks"),
            (~counted).alias("blocks_estimated"),
        )
        .with_columns((pl.col("fees_day") / pl.col("blocks")).alias("own_fees"))
        .with_columns(pl.when(pl.col("own_fees").is_not_null() & pl.col("own_fees").is_not_nan())
                      .then(pl.col("date")).alias("fee_src"))
    )
    first, last = btc["date"].min(), btc["date"].max()
    calendar = pl.DataFrame({"date": pl.date_range(first, last, "1d", eager=True)})
    # Today's total fees are only known at midnight: a day prices with an EARLIER day's figure.
    return (
        calendar.join(own, on="date", how="left")
        .with_columns(
            pl.col("fee_src").shift(1).forward_fill().alias("fee_src"),
            pl.when(pl.col("fee_src").is_not_null()).then(pl.col("own_fees"))
            .shift(1).forward_fill().alias("fees_per_block"),
        )
        .join(own.select(pl.col("date").alias("fee_src"), pl.col("blocks_estimated").alias("src_estimated")),
              on="fee_src", how="left")
        .select("date", "btc_open_usd", "subsidy_btc", "fees_per_block", "fee_src", "src_estimated")
    )


def _hours_issue(kind: IssueKind, series: str, action: Action, rows: pl.DataFrame, message: str,
                 by_day: bool = False) -> DataIssue:
    days = sorted(set(rows["date"].to_list()))
    where = tuple(d.isoformat() for d in days) if by_day else ()
    times = rows["time"].to_list()
    return DataIssue(kind, series, action, rows.height, message.format(
        hours=rows.height, days=len(days), named=named(where) if where else ""),
        days=len(days), first=iso(times[0]), last=iso(times[-1]), where=where)


def _edge(joined: pl.DataFrame, outside: pl.Expr, series: str, what: str, since: datetime | date,
          issues: list[DataIssue]) -> pl.DataFrame:
    gone = joined.filter(outside)
    if gone.height:
        issues.append(_hours_issue(IssueKind.WINDOW_TRIMMED, series, Action.DROPPED, gone,
                                   f"{{hours}} power hour(s) {what} {iso(since)}: dropped"))
    return joined.filter(~outside)


def build_hourly(btc: pl.DataFrame, difficulty: pl.DataFrame, power: pl.DataFrame,
                 difficulty_beyond: DifficultyBeyond = DifficultyBeyond.HOLD,
                 strict: bool = False) -> HourlySeries:
    """Join the series on the power series' hours, using only what was known at each hour."""
    issues: list[DataIssue] = []
    power = _power_present(power, issues)
    ext = extend_difficulty(difficulty, btc, power["time"][-1] + _HOUR, difficulty_beyond)
    daily = _daily(btc, ext.epochs)
    joined = (power.with_columns(pl.col("time").dt.date().alias("date"))
              .join(daily, on="date", how="left")
              .join_asof(ext.epochs, on="time", strategy="backward"))
    first_day, last_day = btc["date"].min(), btc["date"].max()
    joined = _edge(joined, pl.col("date") < first_day, "btc_daily", "before the BTC daily series starts on",
                   first_day, issues)
    joined = _edge(joined, pl.col("date") > last_day, "btc_daily", "after the BTC daily series ends on",
                   last_day, issues)
    gone = joined.filter(pl.col("btc_open_usd").is_null())
    if gone.height:
        issues.append(_hours_issue(
            IssueKind.MISSING_DAYS, "btc_daily", Action.DROPPED, gone,
            "{days} day(s) missing or without an open price ({named}): their {hours} hour(s) dropped",
            by_day=True))
        joined = joined.filter(pl.col("btc_open_usd").is_not_null())
    gone = joined.filter(pl.col("fees_per_block").is_null())
    if gone.height:
        issues.append(_hours_issue(
            IssueKind.NO_PREVIOUS_FEES, "btc_daily", Action.DROPPED, gone,
            "fees per block come from the previous day, and no earlier day has them for {named}: "
            "its {hours} hour(s) dropped (start the BTC daily file a day before the power window)",
            by_day=True))
        joined = joined.filter(pl.col("fees_per_block").is_not_null())
    joined = _edge(joined, pl.col("difficulty").is_null(), "difficulty",
                   "before the first difficulty epoch", ext.epochs["time"][0], issues)
    if joined.height == 0:
        raise MarketDataError("the BTC, difficulty and power series do not overlap in time", issues=[
            i.to_dict() for i in issues])
    _fills(joined, ext, difficulty_beyond, issues)
    report(issues)
    if strict:
        refuse_gaps(issues)
    return _series(joined, ext, difficulty_beyond, issues)


def _fills(joined: pl.DataFrame, ext: Extension, mode: DifficultyBeyond, issues: list[DataIssue]) -> None:
    stale = joined.filter(pl.col("fee_src") < pl.col("date") - pl.duration(days=1))
    if stale.height:
        issues.append(_hours_issue(
            IssueKind.STALE_FEES, "btc_daily", Action.FILLED, stale,
            "the previous day is missing or has no fees or block count for {days} day(s) ({named}): "
            "their fees per block taken from the latest earlier day that has them; "
            "{hours} hour(s) carry them", by_day=True))
    est = joined.filter(pl.col("src_estimated"))
    if est.height:
        src = sorted(set(est["fee_src"].to_list()))
        issues.append(DataIssue(
            IssueKind.BLOCKS_ESTIMATED, "btc_daily", Action.ESTIMATED, est.height,
            f"new_btc_issued_per_day is empty on {len(src)} day(s) the fees come from "
            f"({iso(src[0])}..{iso(src[-1])}): "
            f"their blocks, and so fees per block, estimated as hash rate x 86400 / (difficulty x 2^32); "
            f"{est.height} hour(s) carry them", days=len(src), first=iso(src[0]), last=iso(src[-1])))
    end = ext.last_epoch_end
    if end is None:
        return
    beyond = joined.filter(pl.col("time") >= end)
    if beyond.height == 0:
        return
    head = (f"the difficulty file's last epoch (from {iso(ext.last_epoch_start)}) ends "
            f"about {iso(end)} (2016 blocks at the BTC series' block rate); ")
    if mode is DifficultyBeyond.HOLD:
        value = float(beyond["difficulty"][0])
        message = (head + f"the {beyond.height} hour(s) after it hold its difficulty {value:.6g} constant "
                   "(--difficulty-beyond project projects it from the hash-rate series)")
        action = Action.HELD
    else:
        steps = [f"{iso(t)} {v:.6g}" for t, v in ext.projected]
        message = (head + f"the {beyond.height} hour(s) after it use difficulty projected from the "
                   f"hash-rate series ({len(steps)} retarget(s): {named(steps)})")
        action = Action.PROJECTED
    times = beyond["time"].to_list()
    issues.append(DataIssue(IssueKind.DIFFICULTY_BEYOND_FILE, "difficulty", action, beyond.height,
                            message, days=len(set(beyond["date"].to_list())), first=iso(times[0]),
                            last=iso(times[-1]), where=tuple(f"{iso(t)} {v:.6g}" for t, v in ext.projected)))


def _series(joined: pl.DataFrame, ext: Extension, mode: DifficultyBeyond,
            issues: list[DataIssue]) -> HourlySeries:
    local_dates = np.array(joined["local_date"].to_list(), dtype="datetime64[D]")
    published_through = np.where(
        joined["local_hour"].to_numpy() >= PUBLISH_HOUR_LOCAL,
        local_dates + np.timedelta64(1, "D"),
        local_dates,
    )
    known_until = np.searchsorted(local_dates, published_through, side="right")
    # A forecast is a run of consecutive hours: it stops at the first gap after each hour.
    stamps = np.array([t.timestamp() for t in joined["time"].to_list()])
    gap_after = np.flatnonzero(np.diff(stamps) > 3600.0) + 1  # first row after each gap
    next_gap = np.full(len(stamps), len(stamps))
    if gap_after.size:
        nxt = np.searchsorted(gap_after, np.arange(len(stamps)), side="right")
        has = nxt < gap_after.size
        next_gap[has] = gap_after[nxt[has]]
    end = ext.last_epoch_end
    beyond = (stamps >= end.timestamp()) if end is not None else np.zeros(len(stamps), dtype=bool)
    return HourlySeries(
        at=tuple(joined["time"].to_list()),
        power_eur_per_mwh=joined["price_eur_per_mwh"].to_numpy().astype(np.float64),
        btc_usd=joined["btc_open_usd"].to_numpy().astype(np.float64),
        difficulty=joined["difficulty"].to_numpy().astype(np.float64),
        subsidy_btc=joined["subsidy_btc"].to_numpy().astype(np.float64),
        fees_per_block_btc=joined["fees_per_block"].to_numpy().astype(np.float64),
        known_until=np.minimum(known_until, next_gap).astype(np.int64),
        beyond_difficulty_file=beyond,
        issues=tuple(issues),
        difficulty_beyond=mode,
    )
