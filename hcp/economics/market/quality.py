"""What aligning the real series had to drop, fill or estimate, said out loud.

Every trim or fill ``build_hourly`` makes is recorded as a ``DataIssue`` and travels with
the hourly series into the backtest's result (printed with it, and under ``warnings`` in
``--json``). ``strict`` turns every gap into a ``MarketDataGapError`` instead; only the
estimates the documentation names as the model (blocks per day from the hash rate where
issuance is missing, difficulty projected when asked for) pass under it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from hcp.errors import MarketDataGapError

log = logging.getLogger(__name__)


class IssueKind(StrEnum):
    MISSING_HOURS = "missing_hours"  # power hours absent (or without a price) inside the window
    MISSING_DAYS = "missing_days"  # BTC days absent (or without an open price) inside its file
    WINDOW_TRIMMED = "window_trimmed"  # power hours outside the BTC or difficulty files
    NO_PREVIOUS_FEES = "no_previous_fees"  # a day whose previous day's fees nothing knows
    STALE_FEES = "stale_fees"  # fees per block taken from an older day than the previous one
    BLOCKS_ESTIMATED = "blocks_estimated"  # blocks per day from hash rate (issuance missing)
    DIFFICULTY_BEYOND_FILE = "difficulty_beyond_file"  # hours after the file's last epoch ends


class Action(StrEnum):
    DROPPED = "dropped"  # the hours are not in the backtest
    MISSING = "missing"  # the hours were never in the input; the backtest runs without them
    FILLED = "filled"  # a value was carried from elsewhere
    HELD = "held"  # difficulty held constant past the end of its file
    PROJECTED = "projected"  # difficulty projected from the hash-rate series (asked for)
    ESTIMATED = "estimated"  # the documented estimate stood in for a missing column


# What --strict lets through: a model the user asked for or the docs name, never a gap.
STRICT_ALLOWED = frozenset({Action.PROJECTED, Action.ESTIMATED})

_SHOWN = 6  # dates/spans named in a message before "and N more"


@dataclass(frozen=True)
class DataIssue:
    """One trim or fill: which series, what was done, and to how much of the window."""

    kind: IssueKind
    series: str  # "power", "btc_daily" or "difficulty"
    action: Action
    hours: int  # backtest hours affected (dropped, missing, or carrying the filled value)
    message: str
    days: int = 0
    first: str | None = None  # ISO time/date of the first affected hour or day
    last: str | None = None
    where: tuple[str, ...] = field(default_factory=tuple)  # the dates or spans, in full

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "series": self.series, "action": self.action.value,
                "hours": self.hours, "days": self.days, "first": self.first, "last": self.last,
                "where": list(self.where), "message": self.message}

    def __str__(self) -> str:
        return f"[{self.series}] {self.message}"


def named(items: Sequence[str]) -> str:
    """A short list for a message: the first few, then how many more."""
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def iso(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%MZ")
    return value.isoformat()


def refuse_gaps(issues: Iterable[DataIssue]) -> None:
    """``--strict``: every gap, trim or fill is an error, all of them reported at once."""
    refused = [i for i in issues if i.action not in STRICT_ALLOWED]
    if refused:
        lines = "\n".join(f"  - {i}" for i in refused)
        raise MarketDataGapError(
            f"strict mode: the input series have {len(refused)} gap(s) or fill(s):\n{lines}",
            issues=[i.to_dict() for i in refused],
        )


def report(issues: Sequence[DataIssue]) -> None:
    """Gaps and fills at WARNING; the named estimates (asked for, or the model's) at INFO."""
    for issue in issues:
        log.log(logging.INFO if issue.action in STRICT_ALLOWED else logging.WARNING, "%s", issue)
