"""The replica's stale-while-revalidate snapshot of fleet reports and economics."""

from __future__ import annotations

import asyncio

import pytest

from serve_apps.snapshot import SnapshotCache
from tests.unit.api.support import FixedClock, later


class Source:
    def __init__(self) -> None:
        self.value = 1
        self.calls = 0
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def load(self) -> int:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("source down")
        return self.value


def test_fresh_stale_and_expired() -> None:
    clock, src = FixedClock(), Source()
    cache = SnapshotCache(src.load, fresh_s=0.5, max_age_s=5.0, clock=clock)

    async def run() -> None:
        first = await cache.get()
        assert first.value == 1 and src.calls == 1 and first.as_of == clock.now()
        src.value = 2
        assert (await cache.get()).value == 1 and src.calls == 1  # fresh: no load
        later(clock, 1.0)
        assert (await cache.get()).value == 1  # stale: served, reload started
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert src.calls == 2 and (await cache.get()).value == 2
        src.fail = True
        later(clock, 1.0)
        assert (await cache.get()).value == 2  # the failing background reload is only logged
        await asyncio.sleep(0)
        later(clock, 5.0)
        with pytest.raises(RuntimeError, match="source down"):
            await cache.get()  # too old to serve: the caller sees the source's error

    asyncio.run(run())


def test_concurrent_callers_share_one_load_and_invalidate_forces_a_new_one() -> None:
    clock, src = FixedClock(), Source()
    cache = SnapshotCache(src.load, fresh_s=10, max_age_s=10, clock=clock)

    async def run() -> None:
        src.gate = asyncio.Event()
        waiting = [asyncio.ensure_future(cache.get()) for _ in range(20)]
        await asyncio.sleep(0)
        # A change made while the load is in flight: the next reader must not get the old load.
        cache.invalidate()
        src.value = 7
        late = asyncio.ensure_future(cache.get())
        await asyncio.sleep(0)
        src.gate.set()
        assert {s.value for s in await asyncio.gather(*waiting)} <= {1, 7}
        assert (await late).value == 7
        assert src.calls == 2
        assert (await cache.get()).value == 7 and src.calls == 2

    asyncio.run(run())


def test_bad_ages_are_refused() -> None:
    with pytest.raises(ValueError):
        SnapshotCache(Source().load, fresh_s=2, max_age_s=1)
