"""Rate limiting without a store round trip per request: hits leased from a shared limiter.

A replica takes hits from the shared limiter (SQL or Redis) in blocks and spends them
locally. Blocks start at one hit and double with each lease up to ``max_lease`` (and to a
twentieth of the limit), so a client that sends a request now and then is counted one by
one while a busy client costs one store round trip per block. A refill starts in the
background when a quarter of the block is left, so a steady client rarely waits for it.

Hits are counted in the shared store when they are leased, never after, so the limit holds
across any number of replicas: a client can never get more than ``limit`` hits in a window.
The price is the other way round: hits a replica leased but did not spend before the window
ended are lost to the client, at most one block per replica and window. When a whole block
no longer fits, the replica falls back to leasing one hit at a time, so a single replica
allows exactly ``limit`` hits. Once the shared store refuses, the replica refuses that client
locally until the window ends: floods cost no I/O.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from hcp.ratelimit.window import (
    RateDecision,
    RateLimiter,
    retry_after_seconds,
    window_bounds,
)

log = logging.getLogger(__name__)

# A block is at most this share of the limit, which bounds what unspent leases can cost a
# client per replica and window (5%).
_LEASE_DIVISOR = 20
_MIN_PREFETCH = 4


@dataclass
class _Lease:
    start: int
    end: int
    left: int = 0  # leased and not yet spent
    shared_remaining: int = 0  # what the shared store had left after the last lease
    size: int = 1  # the next block's size
    exhausted: bool = False
    refill: asyncio.Future[None] | None = field(default=None, repr=False)


class LeasedRateLimiter:
    """Async limiter for one process (a Serve replica) over a shared ``RateLimiter``."""

    def __init__(self, shared: RateLimiter, max_lease: int = 256, blocking_io: bool = True) -> None:
        if max_lease < 1:
            raise ValueError("max_lease must be at least 1")
        self.shared = shared
        self.max_lease = max_lease
        # The in-memory limiter never blocks: calling it inline saves a thread hop.
        self._blocking_io = blocking_io
        self._leases: dict[tuple[str, int], _Lease] = {}
        self.store_calls = 0  # round trips to the shared limiter (for tests and benchmarks)

    async def hit(self, key: str, limit: int, window_seconds: int, now: datetime) -> RateDecision:
        """Count one hit of ``key``; allowed while its window has room."""
        start, end = window_bounds(now, window_seconds)
        lease = self._lease(key, window_seconds, start, end)
        while lease.left <= 0 and not lease.exhausted:
            # Each refill adds hits or marks the window exhausted; concurrent callers share
            # one refill and may find its block already spent, hence the loop.
            await self._refill(lease, key, limit, window_seconds, now)
        if lease.left > 0:
            lease.left -= 1
            if (lease.size >= _MIN_PREFETCH and not lease.exhausted
                    and lease.left <= lease.size // 4 and lease.refill is None):
                # Lease the next block before this one runs out; errors surface on the next
                # refill that a request waits for. Not for blocks of a hit or two (small
                # limits): a prefetch saves nothing there, and one cut off with its event loop
                # after taking its hit would cost the client that hit.
                fut = asyncio.ensure_future(self._refill(lease, key, limit, window_seconds, now))
                fut.add_done_callback(_log_failure)
            return RateDecision(True, lease.shared_remaining + lease.left, 0)
        return RateDecision(False, 0, retry_after_seconds(now, end))

    def _lease(self, key: str, window_seconds: int, start: int, end: int) -> _Lease:
        slot = (key, window_seconds)
        lease = self._leases.get(slot)
        if lease is None or lease.start != start:
            # A refill of the ended window may still finish: it fills the old lease, unused.
            if len(self._leases) > 100_000:
                self._forget_ended(start)
            lease = self._leases[slot] = _Lease(start, end)
        return lease

    def _forget_ended(self, now_start: int) -> None:
        for slot in [s for s, lease in self._leases.items() if lease.end <= now_start]:
            del self._leases[slot]

    async def _refill(
        self, lease: _Lease, key: str, limit: int, window_seconds: int, now: datetime
    ) -> None:
        """Lease the next block (one at a time per key: later callers wait for it)."""
        if lease.refill is not None:
            await asyncio.shield(lease.refill)
            return
        lease.refill = asyncio.get_running_loop().create_future()
        try:
            cap = max(1, min(self.max_lease, limit // _LEASE_DIVISOR))
            size = min(lease.size, cap)
            decision = await self._take(key, size, limit, window_seconds, now)
            if not decision.allowed and size > 1:
                # No room for a whole block: spend what is left one hit at a time.
                lease.size = size = 1
                decision = await self._take(key, 1, limit, window_seconds, now)
            if decision.allowed:
                lease.left += size
                lease.shared_remaining = decision.remaining
                lease.size = min(size * 2, cap)
            else:
                lease.exhausted = True
                lease.shared_remaining = 0
            lease.refill.set_result(None)
        except BaseException as exc:
            lease.refill.set_exception(exc)
            lease.refill.exception()  # retrieved: waiters get it, nobody else needs to
            raise
        finally:
            lease.refill = None

    async def _take(
        self, key: str, n: int, limit: int, window_seconds: int, now: datetime
    ) -> RateDecision:
        self.store_calls += 1
        if self._blocking_io:
            return await asyncio.to_thread(self.shared.take, key, n, limit, window_seconds, now)
        return self.shared.take(key, n, limit, window_seconds, now)


def _log_failure(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("background rate-limit lease failed: %s", fut.exception())
