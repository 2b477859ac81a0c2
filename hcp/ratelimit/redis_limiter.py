"""Rate counters in Redis (production). A Lua script makes check-and-count one atomic step."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from hcp.errors import ServiceUnavailableError
from hcp.ratelimit.window import WindowLimiter
from hcp.resilience.breaker import DependencyBreaker
from hcp.resilience.registry import Dependency, guard_of

log = logging.getLogger(__name__)

# KEYS[1]: counter key; ARGV: limit, seconds to keep the counter, hits to take.
# Counts only when all of them fit under the limit, so refused hits are free.
_SCRIPT = """
local n = tonumber(ARGV[3])
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c + n > tonumber(ARGV[1]) then
  return {0, c}
end
c = redis.call('INCRBY', KEYS[1], n)
if c == n then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return {1, c}
"""


class RedisRateLimiter(WindowLimiter):
    def __init__(self, client: Any, prefix: str = "hcp:rl:",
                 breaker: DependencyBreaker | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self._breaker = breaker  # None: the process's Redis breaker
        self._script = client.register_script(_SCRIPT)

    def _count(self, key: str, n: int, limit: int, window_seconds: int, start: int, end: int,
               now: datetime) -> int | None:
        import redis

        rkey = f"{self.prefix}{window_seconds}:{start}:{key}"
        # An open breaker refuses at once (503 with retry_after) instead of every request
        # waiting on a Redis that is down; either way the limiter fails closed.
        with guard_of(Dependency.REDIS, self._breaker):
            try:
                # Relative TTL from the caller's clock: the window's key is unique, so keeping
                # it a second past the window's end is enough and never depends on Redis' clock.
                ttl = max(1, int(end - now.timestamp()) + 1)
                allowed, count = self._script(keys=[rkey], args=[limit, ttl, n])
            except redis.RedisError as exc:
                # Fail closed: without the counter we cannot tell a flood from a client.
                raise ServiceUnavailableError(f"rate limiter unavailable: {exc}") from exc
        return max(0, limit - int(count)) if int(allowed) == 1 else None
