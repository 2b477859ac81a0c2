"""Rate counters in Redis (production). A Lua script makes check-and-count one atomic step."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from hcp.errors import ServiceUnavailableError
from hcp.ratelimit import RateDecision, retry_after_seconds, window_bounds

log = logging.getLogger(__name__)

# KEYS[1]: counter key; ARGV: limit, seconds to keep the counter.
# Counts only when below the limit, so refused hits are free.
_SCRIPT = """
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c >= tonumber(ARGV[1]) then
  return {0, c}
end
c = redis.call('INCR', KEYS[1])
if c == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return {1, c}
"""


class RedisRateLimiter:
    def __init__(self, client: Any, prefix: str = "hcp:rl:") -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_SCRIPT)

    def hit(self, key: str, limit: int, window_seconds: int, now: datetime) -> RateDecision:
        import redis

        start, end = window_bounds(now, window_seconds)
        if limit <= 0:
            return RateDecision(False, 0, retry_after_seconds(now, end))
        rkey = f"{self.prefix}{window_seconds}:{start}:{key}"
        try:
            # Relative TTL from the caller's clock: the window's key is unique, so keeping it a
            # second past the window's end is enough and never depends on Redis' wall clock.
            ttl = max(1, int(end - now.timestamp()) + 1)
            allowed, count = self._script(keys=[rkey], args=[limit, ttl])
        except redis.RedisError as exc:
            # Fail closed: without the counter we cannot tell a flood from a client.
            raise ServiceUnavailableError(f"rate limiter unavailable: {exc}") from exc
        if int(allowed) != 1:
            return RateDecision(False, 0, retry_after_seconds(now, end))
        return RateDecision(True, max(0, limit - int(count)), 0)
