"""The breakers at the platform's call sites: the Redis rate limiter, the chain client and the
Kubo RPC store. A dependency that is down fails a few calls as itself, then every call fails
fast with a typed 503 and its retry_after without touching it; one probe after the recovery
time closes the breaker when the dependency is back. No service runs: the clients are fakes
or point at a loopback port where nothing listens."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis
from web3 import Web3

from hcp.errors import (
    ChainUnavailableError,
    DependencyUnavailableError,
    ImageBackendError,
    ServiceUnavailableError,
)
from hcp.images.store.kubo import KuboStore
from hcp.marketplace.chain.client import ChainClient
from hcp.ratelimit.redis_limiter import RedisRateLimiter
from hcp.resilience import (
    BreakerPolicy,
    BreakerSettings,
    Dependency,
    configure_process_breakers,
    process_breakers,
)
from hcp.resilience.breaker import DependencyBreaker
from tests.unit.resilience.test_breakers import FakeClock

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
RAW_CID = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"  # CID of b"hello world"


def _breaker(name: str, clock: FakeClock) -> DependencyBreaker:
    return DependencyBreaker(name, BreakerPolicy(failure_threshold=2, recovery_seconds=5.0,
                                                 timeout_seconds=1.0), clock=clock)


class _Redis:
    """Just what RedisRateLimiter uses: a registered script, down until told otherwise."""

    def __init__(self) -> None:
        self.up = False
        self.calls = 0

    def register_script(self, _source: str) -> Any:
        def run(keys: list[str], args: list[Any]) -> list[int]:
            self.calls += 1
            if not self.up:
                raise redis.ConnectionError("Connection refused")
            return [1, int(args[2])]

        return run


def test_the_rate_limiter_stops_asking_a_redis_that_is_down() -> None:
    clock, client = FakeClock(), _Redis()
    limiter = RedisRateLimiter(client, breaker=_breaker("redis", clock))
    for _ in range(2):  # its own typed refusal while the breaker counts
        with pytest.raises(ServiceUnavailableError) as e:
            limiter.hit("alice", 10, 60, NOW)
        assert e.value.code == "service_unavailable"
    with pytest.raises(DependencyUnavailableError) as e:
        limiter.hit("alice", 10, 60, NOW)
    assert e.value.http_status == 503 and e.value.to_dict()["retry_after"] == 5
    assert client.calls == 2  # failed fast: Redis was not asked again
    client.up = True
    clock.advance(5)
    assert limiter.hit("alice", 10, 60, NOW).allowed  # the probe goes through and closes it
    assert limiter.hit("alice", 10, 60, NOW).allowed and client.calls == 4


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


def test_the_chain_client_fails_fast_once_the_node_is_down() -> None:
    clock = FakeClock()
    client = ChainClient(Web3(Web3.HTTPProvider(f"http://127.0.0.1:{_dead_port()}",
                                                request_kwargs={"timeout": 2})), in_process=False)
    client.breaker = _breaker("chain", clock)
    for _ in range(2):
        with pytest.raises(ChainUnavailableError):
            client.block_number()
    assert client.breaker.state == "open"
    with pytest.raises(DependencyUnavailableError) as e:
        client.block_number()
    assert e.value.to_dict()["retry_after"] == 5 and "127.0.0.1" not in e.value.to_dict()["detail"]


def test_the_kubo_store_fails_fast_on_calls_and_leaves_transfers_untimed() -> None:
    clock, asked, down = FakeClock(), [], set()

    def handler(request: httpx.Request) -> httpx.Response:
        verb = request.url.path.removeprefix("/api/v0/")
        asked.append(verb)
        if verb in down:
            raise httpx.ConnectError("connection refused", request=request)
        if verb == "repo/stat":
            return httpx.Response(200, json={"RepoSize": 0, "NumObjects": 0})
        if verb == "block/put":
            clock.advance(30)  # an upload far past the call limit of 1 s, yet a success
            return httpx.Response(200, json={"Key": RAW_CID, "Size": 64})
        return httpx.Response(200, text="")  # pin/ls streams one JSON line per pin: none

    store = KuboStore("http://kubo.invalid:5001", 1 << 30,
                      client=httpx.Client(transport=httpx.MockTransport(handler)))
    store.breaker = _breaker("image_store", clock)
    # A transfer is the image's length, not a call to time: slow uploads leave it closed.
    for _ in range(3):
        assert str(store.put_block(b"x" * 64)) == RAW_CID
    assert store.breaker.state == "closed"
    down.add("pin/ls")
    # Calls that fail one after the other open it, and then nothing reaches the node.
    for _ in range(2):
        with pytest.raises(ImageBackendError):
            store.pins()
    n = len(asked)
    with pytest.raises(DependencyUnavailableError):
        store.pins()
    with pytest.raises(DependencyUnavailableError):
        store.put_block(b"x" * 64)  # its cap check is a call: refused before the upload
    assert len(asked) == n


def test_call_sites_share_the_process_breaker_configured_at_start() -> None:
    clock, client = FakeClock(), _Redis()
    before = process_breakers()
    try:
        limiter = RedisRateLimiter(client)  # built before the process is configured
        configure_process_breakers(BreakerSettings(redis=BreakerPolicy(failure_threshold=1)),
                                   clock=clock)
        with pytest.raises(ServiceUnavailableError):
            limiter.hit("bob", 10, 60, NOW)
        # A second call site of the same dependency sees the breaker the first one opened.
        other = RedisRateLimiter(_Redis())
        with pytest.raises(DependencyUnavailableError):
            other.hit("carol", 10, 60, NOW)
        assert process_breakers().get(Dependency.REDIS).state == "open"
    finally:
        import hcp.resilience.registry as registry

        registry._PROCESS = before


def test_the_store_stops_connecting_to_a_postgres_that_is_down() -> None:
    """Every PostgreSQL connection goes through the process's breaker (hcp.store.db); the
    store's error is both a dependency's 503 and a StoreError (what retrying loops catch)."""
    from sqlalchemy import text

    import hcp.resilience.registry as registry
    from hcp.errors import StoreError, StoreUnavailableError
    from hcp.store import connect

    before, clock = registry._PROCESS, FakeClock()
    configure_process_breakers(BreakerSettings(postgres=BreakerPolicy(
        failure_threshold=2, recovery_seconds=7, timeout_seconds=1)), clock=clock)
    engine = connect(f"postgresql://hcp@127.0.0.1:{_dead_port()}/hcp")
    try:
        outcomes = []
        for _ in range(3):
            with pytest.raises(StoreUnavailableError) as e, engine.connect() as c:
                c.execute(text("SELECT 1"))
            assert isinstance(e.value, StoreError) and e.value.http_status == 503
            outcomes.append(e.value.to_dict()["detail"])
        assert outcomes[:2] == ["postgres failed"] * 2
        assert outcomes[2] == "postgres is unavailable (circuit open); retry later"
        assert e.value.to_dict()["retry_after"] == 7
    finally:
        engine.dispose()
        registry._PROCESS = before
