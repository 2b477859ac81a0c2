"""Leased rate limiting: exact on one replica, never over the limit across replicas, few
round trips to the shared counters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from hcp.ratelimit import LeasedRateLimiter, MemoryRateLimiter, RateLimiter, SqlRateLimiter
from hcp.store.db import connect

T0 = datetime(2026, 11, 23, 12, 0, 10, tzinfo=UTC)


@pytest.fixture
def sqlite_limiter(sqlite_engine: Engine) -> SqlRateLimiter:
    return SqlRateLimiter(sqlite_engine)


async def _hits(lim: LeasedRateLimiter, n: int, limit: int, key: str = "k",
                now: datetime = T0) -> list[bool]:
    return [(await lim.hit(key, limit, 60, now)).allowed for _ in range(n)]


def test_take_counts_all_or_nothing() -> None:
    lim = MemoryRateLimiter()
    assert lim.take("k", 4, 10, 60, T0).allowed
    assert not lim.take("k", 7, 10, 60, T0).allowed  # 4 + 7 > 10: nothing counted
    d = lim.take("k", 6, 10, 60, T0)
    assert d.allowed and d.remaining == 0
    assert not lim.hit("k", 10, 60, T0).allowed


def test_sql_take_counts_all_or_nothing(sqlite_limiter: SqlRateLimiter) -> None:
    assert sqlite_limiter.take("k", 4, 10, 60, T0).allowed
    assert not sqlite_limiter.take("k", 7, 10, 60, T0).allowed
    assert sqlite_limiter.take("k", 6, 10, 60, T0).allowed
    assert not sqlite_limiter.hit("k", 10, 60, T0).allowed
    assert not sqlite_limiter.take("k2", 11, 10, 60, T0).allowed  # more than the limit at once


def test_one_replica_allows_exactly_the_limit_with_few_store_calls(
        sqlite_limiter: SqlRateLimiter) -> None:
    lim = LeasedRateLimiter(sqlite_limiter, max_lease=64)
    got = asyncio.run(_hits(lim, 1300, 1000))
    assert sum(got) == 1000 and got[:1000] == [True] * 1000
    # Blocks of 1, 2, 4, ... 50 (a twentieth of the limit), then single hits at the very end.
    assert lim.store_calls < 60
    # The shared counter holds exactly what was allowed.
    assert not sqlite_limiter.hit("k", 1000, 60, T0).allowed
    assert sqlite_limiter.take("k", 1, 1001, 60, T0).allowed


def test_a_new_window_starts_fresh_and_refusals_cost_no_io() -> None:
    shared = MemoryRateLimiter()
    lim = LeasedRateLimiter(shared, blocking_io=False)
    got = asyncio.run(_hits(lim, 30, 20))
    assert sum(got) == 20
    calls = lim.store_calls
    asyncio.run(_hits(lim, 500, 20))  # a flood in the exhausted window
    assert lim.store_calls == calls
    refused = asyncio.run(lim.hit("k", 20, 60, T0))
    assert refused.retry_after == 50  # the window 12:00:00-12:01:00 ends in 50 s
    assert asyncio.run(_hits(lim, 5, 20, now=T0 + timedelta(seconds=50))) == [True] * 5


@settings(max_examples=40, deadline=None)
@given(limit=st.integers(1, 400), replicas=st.integers(1, 5),
       order=st.lists(st.integers(0, 4), min_size=0, max_size=900))
def test_never_more_than_the_limit_across_replicas(limit: int, replicas: int,
                                                   order: list[int]) -> None:
    shared: RateLimiter = MemoryRateLimiter()
    reps = [LeasedRateLimiter(shared, max_lease=32, blocking_io=False) for _ in range(replicas)]

    async def run() -> int:
        allowed = 0
        for i in order:
            allowed += (await reps[i % replicas].hit("k", limit, 60, T0)).allowed
        return allowed

    allowed = asyncio.run(run())
    assert allowed <= limit
    # One replica alone gets exactly min(hits, limit). With more, a refusal means the shared
    # counter is full, so what is missing is unspent leases: at most the block in hand and
    # one prefetched block per replica, each at most a twentieth of the limit (and 32).
    cap = max(1, min(32, limit // 20))
    if replicas == 1:
        assert allowed == min(len(order), limit)
    elif allowed < len(order):
        assert allowed >= limit - replicas * 2 * cap


def test_concurrent_callers_share_one_refill(sqlite_limiter: SqlRateLimiter) -> None:
    lim = LeasedRateLimiter(sqlite_limiter, max_lease=256)

    async def run() -> list[bool]:
        return [d.allowed for d in await asyncio.gather(
            *(lim.hit("k", 10_000, 60, T0) for _ in range(400)))]

    assert all(asyncio.run(run()))
    assert lim.store_calls <= 12  # 1 + 2 + 4 + ... + 256 >= 400 in at most 9 blocks (+prefetch)


def test_store_errors_reach_the_caller(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'missing-tables.db'}")  # never migrated
    lim = LeasedRateLimiter(SqlRateLimiter(engine))
    from hcp.errors import StoreError

    with pytest.raises(StoreError):
        asyncio.run(lim.hit("k", 10, 60, T0))
    engine.dispose()
