"""A replica-local snapshot of data that is expensive to gather per request (fleet reports).

Stale-while-revalidate: a snapshot younger than ``fresh_s`` is served as is; one younger than
``max_age_s`` is served while one background reload runs; an older one (or none) is reloaded
before answering, so a dead source still surfaces as its error within ``max_age_s``. Nothing
polls while nobody asks. Every answer says when its data was gathered (``as_of``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from hcp.clock import Clock, SystemClock

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Snapshot(Generic[T]):
    value: T
    as_of: datetime
    taken_mono: float


class SnapshotCache(Generic[T]):
    def __init__(
        self,
        load: Callable[[], Awaitable[T]],
        fresh_s: float,
        max_age_s: float,
        clock: Clock | None = None,
    ) -> None:
        if fresh_s < 0 or max_age_s < fresh_s:
            raise ValueError("need 0 <= fresh_s <= max_age_s")
        self._load = load
        self._clock = clock or SystemClock()
        self.fresh_s = fresh_s
        self.max_age_s = max_age_s
        self._snap: Snapshot[T] | None = None
        self._inflight: asyncio.Future[Snapshot[T]] | None = None
        self._inflight_generation = 0
        self._generation = 0  # bumped by invalidate(): loads started before it are not kept
        self.loads = 0

    async def get(self) -> Snapshot[T]:
        snap = self._snap
        if snap is not None:
            age = self._clock.monotonic() - snap.taken_mono
            if age <= self.fresh_s:
                return snap
            if age <= self.max_age_s:
                if self._inflight is None:
                    fut = asyncio.ensure_future(self._reload())
                    fut.add_done_callback(_log_failure)
                return snap
        return await self._reload()

    def invalidate(self) -> None:
        """Forget the snapshot (after a change made through this replica)."""
        self._snap = None
        self._generation += 1

    async def _reload(self) -> Snapshot[T]:
        """One load at a time per generation; concurrent callers share it."""
        generation = self._generation
        if self._inflight is not None and self._inflight_generation == generation:
            return await asyncio.shield(self._inflight)
        fut: asyncio.Future[Snapshot[T]] = asyncio.get_running_loop().create_future()
        self._inflight, self._inflight_generation = fut, generation
        try:
            self.loads += 1
            started, at = self._clock.monotonic(), self._clock.now()
            snap = Snapshot(await self._load(), at, started)
            if generation == self._generation:
                self._snap = snap
            fut.set_result(snap)
            return snap
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved here; waiters re-raise it
            raise
        finally:
            if self._inflight is fut:
                self._inflight = None


def _log_failure(fut: asyncio.Future[Snapshot[T]]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("background snapshot reload failed: %s", fut.exception())
