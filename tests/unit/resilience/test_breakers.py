"""Circuit breakers on a fake clock: open after repeated failures, fail fast with a typed 503
and its retry_after, half-open to one probe, close when the dependency is back; the state is
a catalogue metric."""

from __future__ import annotations

import asyncio
import pickle

import pytest

from hcp.errors import ConflictError, DependencyUnavailableError, ServiceUnavailableError
from hcp.observability.sink import PrometheusSink
from hcp.resilience import BreakerPolicy, BreakerRegistry, BreakerSettings, Dependency
from hcp.resilience.breaker import is_dependency_failure


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Flaky:
    """A dependency that is down until told otherwise."""

    def __init__(self) -> None:
        self.up = False
        self.calls = 0

    def call(self) -> str:
        self.calls += 1
        if not self.up:
            raise ConnectionRefusedError("connection refused")
        return "pong"


POLICY = BreakerPolicy(failure_threshold=3, recovery_seconds=10, timeout_seconds=0.5)


@pytest.fixture
def setup() -> tuple[BreakerRegistry, PrometheusSink, FakeClock]:
    sink, clock = PrometheusSink(), FakeClock()
    settings = BreakerSettings(redis=POLICY)
    return BreakerRegistry(settings, sink, clock=clock), sink, clock


def state_metric(sink: PrometheusSink, dependency: str) -> dict[str, float | None]:
    return {s: sink.value("hcp_dependency_breaker_state", dependency=dependency, state=s)
            for s in ("closed", "open", "half_open")}


def calls(sink: PrometheusSink, outcome: str) -> float:
    return sink.value("hcp_dependency_calls_total", dependency="redis", outcome=outcome) or 0


def test_open_fail_fast_half_open_probe_close(setup) -> None:  # type: ignore[no-untyped-def]
    breakers, sink, clock = setup
    redis, dep = breakers.get(Dependency.REDIS), Flaky()
    assert state_metric(sink, "redis") == {"closed": 1, "open": 0, "half_open": 0}

    for _ in range(3):  # failures leave as a typed 503 while the breaker is still closed
        with pytest.raises(DependencyUnavailableError) as failed, redis.guard():
            dep.call()
        assert isinstance(failed.value.__cause__, ConnectionRefusedError)
    assert redis.state == "open"
    assert failed.value.retry_after == 10  # the last failure opened it
    assert state_metric(sink, "redis") == {"closed": 0, "open": 1, "half_open": 0}

    clock.advance(4)
    with pytest.raises(DependencyUnavailableError) as refused, redis.guard():
        dep.call()
    assert dep.calls == 3  # failed fast: the dependency was not called
    assert refused.value.retry_after == 6
    assert refused.value.http_status == 503 and refused.value.code == "dependency_unavailable"
    assert refused.value.to_dict() == {"error": "dependency_unavailable", "retry_after": 6,
                                       "dependency": "redis",
                                       "detail": "redis is unavailable (circuit open); retry later"}

    clock.advance(6)  # half-open: one probe; it fails and opens the breaker again
    assert breakers.states()["redis"] == "half_open"
    assert state_metric(sink, "redis")["half_open"] == 1
    with pytest.raises(DependencyUnavailableError), redis.guard():
        dep.call()
    assert redis.state == "open" and dep.calls == 4

    clock.advance(10)
    dep.up = True
    with redis.guard():
        assert dep.call() == "pong"
    assert redis.state == "closed"
    assert state_metric(sink, "redis") == {"closed": 1, "open": 0, "half_open": 0}
    assert (calls(sink, "failure"), calls(sink, "rejected"), calls(sink, "ok")) == (4, 1, 1)


def test_a_success_resets_the_count_and_business_errors_are_successes(setup) -> None:  # type: ignore[no-untyped-def]
    breakers, _, _ = setup
    redis, dep = breakers.get("redis"), Flaky()
    for _ in range(2):
        with pytest.raises(DependencyUnavailableError), redis.guard():
            dep.call()
    with pytest.raises(ConflictError), redis.guard():  # the dependency answered: it works
        raise ConflictError("duplicate key")
    for _ in range(2):
        with pytest.raises(DependencyUnavailableError), redis.guard():
            dep.call()
    assert redis.state == "closed"


def test_only_one_probe_at_a_time_when_half_open(setup) -> None:  # type: ignore[no-untyped-def]
    breakers, _, clock = setup
    redis, dep = breakers.get("redis"), Flaky()
    for _ in range(3):
        with pytest.raises(DependencyUnavailableError), redis.guard():
            dep.call()
    clock.advance(10)
    dep.up = True
    with redis.guard():  # the probe is in flight ...
        with pytest.raises(DependencyUnavailableError) as busy, redis.guard():
            dep.call()  # ... so a second call fails fast
        assert busy.value.retry_after == 1
        dep.call()
    assert redis.state == "closed" and dep.calls == 4


def test_async_calls_time_out_and_share_the_breaker(setup) -> None:  # type: ignore[no-untyped-def]
    breakers, sink, clock = setup
    redis = breakers.get("redis")

    async def hang() -> None:
        await asyncio.Event().wait()

    async def scenario() -> None:
        for _ in range(2):
            with pytest.raises(DependencyUnavailableError) as slow:
                async with redis.aguard():
                    await hang()
            assert "did not answer in time" in slow.value.detail
        with pytest.raises(DependencyUnavailableError), redis.guard():  # a sync failure
            raise OSError("reset by peer")
        assert redis.state == "open"
        with pytest.raises(DependencyUnavailableError):
            async with redis.aguard():
                raise AssertionError("never called while open")
        clock.advance(10)

        @breakers.protect(Dependency.REDIS)
        async def ping() -> str:
            return "pong"

        assert await ping() == "pong"

    asyncio.run(scenario())
    assert redis.state == "closed"
    assert calls(sink, "timeout") == 2 and calls(sink, "failure") == 1


def test_a_sync_call_over_its_limit_counts_as_a_failure(setup) -> None:  # type: ignore[no-untyped-def]
    breakers, sink, clock = setup

    @breakers.protect("redis")
    def slow_ping() -> str:
        clock.advance(0.75)  # over the 0.5 s limit: the answer is used, the breaker counts it
        return "pong"

    assert [slow_ping() for _ in range(3)] == ["pong"] * 3
    assert breakers.get("redis").state == "open"
    assert calls(sink, "timeout") == 3


def test_outside_cancellation_says_nothing_about_the_dependency(setup) -> None:  # type: ignore[no-untyped-def]
    breakers, sink, _ = setup
    redis = breakers.get("redis")

    async def scenario() -> None:
        async def call() -> None:
            async with redis.aguard():
                await asyncio.sleep(0.2)

        task = asyncio.create_task(call())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert sum(calls(sink, o) for o in ("ok", "failure", "timeout", "rejected")) == 0


def test_what_counts_as_a_dependency_failure() -> None:
    import httpx
    import redis
    import sqlalchemy.exc

    assert is_dependency_failure(ConnectionResetError())
    assert is_dependency_failure(TimeoutError())
    assert is_dependency_failure(redis.exceptions.ConnectionError("down"))
    assert is_dependency_failure(httpx.ConnectError("refused"))
    assert is_dependency_failure(sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("x")))
    assert is_dependency_failure(ServiceUnavailableError("chain down"))
    assert not is_dependency_failure(sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("x")))
    assert not is_dependency_failure(ConflictError("revert"))
    assert not is_dependency_failure(ValueError("bad input"))


def test_the_error_survives_pickling_and_maps_to_503_with_retry_after() -> None:
    from serve_apps.errors import error_response

    exc = DependencyUnavailableError("redis is unavailable", retry_after=7, dependency="redis")
    again = pickle.loads(pickle.dumps(exc))
    assert isinstance(again, DependencyUnavailableError) and again.retry_after == 7
    response = error_response(again)
    assert response.status_code == 503 and response.headers["Retry-After"] == "7"
