"""An in-process limiter for tests and single-process tools (not shared across processes)."""

from __future__ import annotations

import threading
from datetime import datetime

from hcp.ratelimit.window import WindowLimiter


class MemoryRateLimiter(WindowLimiter):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int, int], int] = {}

    def _count(self, key: str, n: int, limit: int, window_seconds: int, start: int, end: int,
               now: datetime) -> int | None:
        slot = (key, window_seconds, start)
        with self._lock:
            count = self._counts.get(slot, 0)
            if count + n > limit:
                return None
            self._counts[slot] = count + n
            # Old windows are never read again; drop them so the dict stays small.
            for old in [k for k in self._counts if k[0] == key and k[2] < start]:
                del self._counts[old]
            return limit - count - n
