"""What a metrics-history answer holds: a window, its step, and one point per step.

The same answer comes from Prometheus (the recording rules' one-minute series) or from the
store's own downsampled rows; both fill the same points, so a caller never needs to know
which answered (``source`` says it, for the curious).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Window(StrEnum):
    """The three spans the MARA document's dashboards show."""

    HOUR = "1h"
    DAY = "1d"
    MONTH = "30d"

    @property
    def span(self) -> timedelta:
        return _SPANS[self][0]

    @property
    def step_seconds(self) -> int:
        """One point per minute over an hour, per 5 minutes over a day, per hour over 30 days
        (60, 288 and 720 points)."""
        return _SPANS[self][1]


_SPANS = {Window.HOUR: (timedelta(hours=1), 60), Window.DAY: (timedelta(days=1), 300),
          Window.MONTH: (timedelta(days=30), 3600)}


class Scope(StrEnum):
    DEVICE = "device"
    FACILITY = "facility"


class HistorySource(StrEnum):
    PROMETHEUS = "prometheus"
    STORE = "store"


@dataclass(frozen=True)
class HistoryPoint:
    """One step of a device's or a facility's history; ``at`` is the step's start (UTC).

    For a device each value is its own average (or peak) over the step. For a facility,
    power and hashrate are the sums of its devices' averages (``power_w_max`` the sum of their
    peaks: an upper bound of the facility's peak), temperature and utilization the mean of its
    devices' averages and ``temperature_c_max`` the hottest device. A step with no samples has
    ``devices == 0`` and every value None: a gap is shown as a gap, never as zero.
    """

    at: datetime
    devices: int
    power_w: float | None = None
    power_w_max: float | None = None
    temperature_c: float | None = None
    temperature_c_max: float | None = None
    utilization: float | None = None
    hashrate_hs: float | None = None


VALUES = ("power_w", "power_w_max", "temperature_c", "temperature_c_max", "utilization",
          "hashrate_hs")


@dataclass(frozen=True)
class History:
    scope: Scope
    subject: str  # the device id or the facility's name
    window: Window
    step_seconds: int
    start: datetime  # the first step's start
    end: datetime  # the last step's end (past the present: the step now running is included)
    source: HistorySource
    points: tuple[HistoryPoint, ...]


@dataclass(frozen=True)
class Span:
    """The steps a window covers at a given time: ``count`` steps of ``step`` seconds from
    ``start``; the last one holds ``now``."""

    start: datetime
    step: int
    count: int

    @classmethod
    def of(cls, window: Window, now: datetime) -> Span:
        step = window.step_seconds
        epoch = int(now.timestamp())
        end = (epoch // step + 1) * step
        count = int(window.span.total_seconds()) // step
        return cls(datetime.fromtimestamp(end - count * step, UTC), step, count)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.step * self.count)

    @property
    def first_epoch(self) -> int:
        return int(self.start.timestamp())

    def index_of(self, epoch_seconds: int) -> int | None:
        """The step that holds this time, or None outside the span."""
        i = (epoch_seconds - self.first_epoch) // self.step
        return i if 0 <= i < self.count else None

    def at(self, i: int) -> datetime:
        return self.start + timedelta(seconds=self.step * i)

    def dense(self, found: dict[int, HistoryPoint]) -> tuple[HistoryPoint, ...]:
        """Every step in order: the found ones, and empty points where nothing was sampled."""
        return tuple(found.get(i) or HistoryPoint(at=self.at(i), devices=0)
                     for i in range(self.count))
