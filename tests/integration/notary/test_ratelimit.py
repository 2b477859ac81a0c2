"""The shared rate limiter: exact under concurrency on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.errors import ServiceUnavailableError
from hcp.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter, SqlRateLimiter
from hcp.store.db import connect, migrate
from tests.conftest import fresh_postgres_database
from tests.unit.notary.support import PrivateRedis, private_redis

T0 = datetime(2026, 11, 23, 12, 0, 10, tzinfo=UTC)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    yield from private_redis(tmp_path)


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
def limiter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
    elif request.param == "sqlite":
        engine = connect(f"sqlite:///{tmp_path / 'rl.db'}")
        migrate(engine)
        yield SqlRateLimiter(engine)
        engine.dispose()
    elif request.param == "postgresql":
        with fresh_postgres_database() as url:
            engine = connect(url)
            migrate(engine)
            yield SqlRateLimiter(engine)
            engine.dispose()
    else:
        import redis

        for server in private_redis(tmp_path):
            yield RedisRateLimiter(redis.Redis.from_url(server.url))


def test_counts_only_allowed_hits_and_says_when(limiter: RateLimiter) -> None:
    got = [limiter.hit("k", 3, 60, T0) for _ in range(5)]
    assert [d.allowed for d in got] == [True, True, True, False, False]
    assert [d.remaining for d in got[:3]] == [2, 1, 0]
    assert got[3].retry_after == 50  # window 12:00:00-12:01:00, now 12:00:10
    # A new window starts fresh; other keys are independent.
    assert limiter.hit("k", 3, 60, T0 + timedelta(seconds=50)).allowed
    assert limiter.hit("other", 3, 60, T0).allowed


def test_exact_under_concurrency(limiter: RateLimiter) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        decisions = list(pool.map(lambda _: limiter.hit("flood", 25, 3600, T0), range(120)))
    assert sum(d.allowed for d in decisions) == 25


@settings(max_examples=30, deadline=None)
@given(limit=st.integers(1, 12), hits=st.integers(0, 30))
def test_memory_limiter_allows_min_of_hits_and_limit(limit: int, hits: int) -> None:
    lim = MemoryRateLimiter()
    allowed = sum(lim.hit("k", limit, 10, T0).allowed for _ in range(hits))
    assert allowed == min(limit, hits)


def test_redis_down_raises_service_unavailable(redis_server: PrivateRedis) -> None:
    import redis

    lim = RedisRateLimiter(redis.Redis.from_url(redis_server.url, socket_timeout=1,
                                                socket_connect_timeout=1))
    assert lim.hit("k", 1, 60, T0).allowed
    redis_server.stop()
    with pytest.raises(ServiceUnavailableError):
        lim.hit("k", 1, 60, T0)
