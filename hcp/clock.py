"""Clocks passed into hcp objects, so tests can drive time. All times are UTC-aware."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.perf_counter()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
