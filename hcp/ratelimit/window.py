"""The fixed window every rate-limit backend counts in, and the types they answer with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    remaining: int
    retry_after: int  # seconds until the window that refused the hit ends; 0 when allowed


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window_seconds: int, now: datetime) -> RateDecision:
        """Count one hit for ``key`` if it stays within ``limit``; say whether it did."""
        ...

    def take(
        self, key: str, n: int, limit: int, window_seconds: int, now: datetime
    ) -> RateDecision:
        """Count ``n`` hits at once if all of them stay within ``limit``, else none.

        A replica leases blocks of hits this way (``LeasedRateLimiter``) so that most
        requests are decided without a round trip to the shared store.
        """
        ...


class WindowLimiter:
    """What every backend shares: ``hit`` is a ``take`` of one, requests that can never fit
    are refused without I/O, and a backend only counts ``n`` hits in the window [start, end)."""

    def hit(self, key: str, limit: int, window_seconds: int, now: datetime) -> RateDecision:
        return self.take(key, 1, limit, window_seconds, now)

    def take(
        self, key: str, n: int, limit: int, window_seconds: int, now: datetime
    ) -> RateDecision:
        start, end = window_bounds(now, window_seconds)
        if n <= 0 or n > limit:
            return RateDecision(False, 0, retry_after_seconds(now, end))
        remaining = self._count(key, n, limit, window_seconds, start, end, now)
        if remaining is None:
            return RateDecision(False, 0, retry_after_seconds(now, end))
        return RateDecision(True, remaining, 0)

    def _count(self, key: str, n: int, limit: int, window_seconds: int, start: int, end: int,
               now: datetime) -> int | None:
        """Count ``n`` hits if they fit; the hits left in the window, or None if refused."""
        raise NotImplementedError


def window_bounds(now: datetime, window_seconds: int) -> tuple[int, int]:
    """(start, end) of the fixed window holding ``now``, as Unix seconds."""
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    ts = int(now.timestamp())
    start = ts - ts % window_seconds
    return start, start + window_seconds


def retry_after_seconds(now: datetime, window_end: int) -> int:
    return max(1, int(window_end - now.timestamp() + 0.999))
