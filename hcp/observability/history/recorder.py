"""The writing side: a GPU's samples summed per minute, each minute written once when it ends.

A GPU actor feeds every status it exports (every checkpoint, 5 s by default); the minute a
sample falls in is summed in memory and written when the first sample of a later minute
arrives. The store adds a minute into its hour in the same transaction, and only the first
time that minute is written, so a retried write never counts twice. What this costs: a GPU
actor that dies loses its open minute (at most a minute of samples), and a store that stays
down for more than ``MAX_PENDING`` minutes loses the oldest of them; history is a view of
the fleet, not a ledger.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from hcp.clock import Clock

log = logging.getLogger(__name__)

MAX_PENDING = 120  # minutes held while the store is down
PRUNE_EVERY = timedelta(hours=1)


@dataclass
class MinuteRow:
    """One GPU's sums and peaks over one UTC minute (``minute``: minutes since the epoch)."""

    device_id: str
    facility: str
    minute: int
    samples: int = 0
    power_sum: float = 0.0
    power_max: float = -math.inf
    temperature_sum: float = 0.0
    temperature_max: float = -math.inf
    utilization_sum: float = 0.0
    hashrate_sum: float = 0.0

    def add(self, power_w: float, temperature_c: float, utilization: float,
            hashrate_hs: float) -> None:
        self.samples += 1
        self.power_sum += power_w
        self.power_max = max(self.power_max, power_w)
        self.temperature_sum += temperature_c
        self.temperature_max = max(self.temperature_max, temperature_c)
        self.utilization_sum += utilization
        self.hashrate_sum += hashrate_hs


class HistoryWriter(Protocol):
    def write_minutes(self, rows: list[MinuteRow]) -> None:
        """Store each minute once (a minute already stored is skipped) and add it to its hour."""
        ...

    def prune(self, device_id: str, now: datetime) -> int:
        """Delete this GPU's rows that no window reads any more; the number deleted."""
        ...


def epoch_minute(at: datetime) -> int:
    return int(at.timestamp()) // 60


class HistoryRecorder:
    """The minutes of one GPU. Not thread-safe: one actor's export loop calls it."""

    def __init__(self, device_id: str, facility: str, writer: HistoryWriter, clock: Clock) -> None:
        self.device_id = device_id
        self.facility = facility
        self._writer = writer
        self._clock = clock
        self._open: MinuteRow | None = None
        self._pending: list[MinuteRow] = []
        self._pruned_at: datetime | None = None

    def add(self, at: datetime, power_w: float, temperature_c: float, utilization: float,
            hashrate_hs: float) -> None:
        """One sample. A value that is not a finite number is refused by not counting the
        sample at all: a NaN would poison every sum it enters."""
        values = (power_w, temperature_c, utilization, hashrate_hs)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            log.warning("%s: sample with a non-finite value not recorded: %r", self.device_id, values)
            return
        minute = epoch_minute(at)
        if self._open is not None and minute != self._open.minute:
            if minute < self._open.minute:
                return  # a sample older than the open minute (a clock step back): not recorded
            self._pending.append(self._open)
            self._open = None
        if self._open is None:
            self._open = MinuteRow(self.device_id, self.facility, minute)
        self._open.add(float(power_w), float(temperature_c), float(utilization), float(hashrate_hs))
        self.flush()

    def flush(self) -> None:
        """Write the ended minutes; on a store failure keep them for the next call."""
        if not self._pending:
            return
        try:
            self._writer.write_minutes(self._pending)
        except Exception:  # the store being down must never stop the actor's export loop
            if len(self._pending) > MAX_PENDING:
                dropped = len(self._pending) - MAX_PENDING
                del self._pending[:dropped]
                log.warning("%s: store down, %d minute(s) of history dropped", self.device_id, dropped)
            log.warning("%s: history write failed; %d minute(s) kept for retry",
                        self.device_id, len(self._pending), exc_info=True)
            return
        self._pending.clear()
        now = self._clock.now()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            try:
                self._writer.prune(self.device_id, now)
            except Exception:
                log.warning("%s: history retention failed", self.device_id, exc_info=True)

    @property
    def pending(self) -> int:
        return len(self._pending)
