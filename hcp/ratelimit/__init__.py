"""Fixed-window rate limiting shared by every HTTP surface of hcp (notary, API).

A limiter answers one question atomically: may ``key`` make one more hit in the current
window of ``window_seconds`` given ``limit`` hits per window? A hit is counted only when it
is allowed, so refused floods never push a client's window further out. Both backends are
exact under concurrency: the SQL one by a single conditional upsert, the Redis one by a Lua
script.
"""

from __future__ import annotations

from hcp.ratelimit.leased import LeasedRateLimiter
from hcp.ratelimit.memory import MemoryRateLimiter
from hcp.ratelimit.redis_limiter import RedisRateLimiter
from hcp.ratelimit.sql import SqlRateLimiter
from hcp.ratelimit.window import (
    RateDecision,
    RateLimiter,
    WindowLimiter,
    retry_after_seconds,
    window_bounds,
)

__all__ = [
    "LeasedRateLimiter",
    "MemoryRateLimiter",
    "RateDecision",
    "RateLimiter",
    "RedisRateLimiter",
    "SqlRateLimiter",
    "WindowLimiter",
    "retry_after_seconds",
    "window_bounds",
]
