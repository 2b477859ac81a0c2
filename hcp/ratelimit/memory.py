"""An in-process limiter for tests and single-process tools (not shared across processes)."""

from __future__ import annotations

import threading
from datetime import datetime

from hcp.ratelimit import RateDecision, retry_after_seconds, window_bounds


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int, int], int] = {}

    def hit(self, key: str, limit: int, window_seconds: int, now: datetime) -> RateDecision:
        return self.take(key, 1, limit, window_seconds, now)

    def take(
        self, key: str, n: int, limit: int, window_seconds: int, now: datetime
    ) -> RateDecision:
        start, end = window_bounds(now, window_seconds)
        slot = (key, window_seconds, start)
        with self._lock:
            count = self._counts.get(slot, 0)
            if n <= 0 or count + n > limit:
                return RateDecision(False, max(0, limit - count), retry_after_seconds(now, end))
            self._counts[slot] = count + n
            # Old windows are never read again; drop them so the dict stays small.
            for old in [k for k in self._counts if k[0] == key and k[2] < start]:
                del self._counts[old]
            return RateDecision(True, limit - count - n, 0)
