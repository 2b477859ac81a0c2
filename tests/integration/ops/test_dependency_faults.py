"""Dependencies that go away mid-run and come back (a TCP relay in front of a real Redis and a
real anvil, cut and mended): the platform answers clean 503s, first as the dependency's own
failure, then fast from the open breaker with ``Retry-After`` and no attempt to connect; after
the recovery time one probe closes the breaker; no count and no money is lost or doubled.
(PostgreSQL: tests/integration/postgres/test_store_breaker_pg.py.)"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
from fastapi.testclient import TestClient

from hcp.auth.tokens import Role
from hcp.config import Settings
from hcp.errors import ChainUnavailableError, DependencyUnavailableError
from hcp.marketplace.chain.stack import open_chain
from hcp.marketplace.escrow_backend import ONE_TOKEN, split_payment
from hcp.ratelimit import LeasedRateLimiter
from hcp.ratelimit.redis_limiter import RedisRateLimiter
from hcp.resilience import BreakerPolicy
from hcp.resilience.breaker import DependencyBreaker
from serve_apps.factory import build_app
from tests.integration.chain.conftest import running_anvil
from tests.relay import Relay
from tests.unit.api.support import make_harness
from tests.unit.notary.support import PrivateRedis, private_redis
from tests.unit.resilience.test_breakers import FakeClock

LIMIT = 5


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    yield from private_redis(tmp_path)


def _breaker(name: str, clock: FakeClock, recovery: float) -> DependencyBreaker:
    return DependencyBreaker(name, BreakerPolicy(failure_threshold=2, recovery_seconds=recovery,
                                                 timeout_seconds=30), clock=clock)


def test_redis_away_mid_run_answers_503s_then_counts_on(tmp_path: Path,
                                                        redis_server: PrivateRedis) -> None:
    relay = Relay("127.0.0.1", redis_server.port)
    clock = FakeClock()
    try:
        h = make_harness(tmp_path, api_rate_limit=LIMIT)
        client = redis.Redis(host="127.0.0.1", port=relay.port, socket_timeout=1,
                             socket_connect_timeout=1)
        limiter = RedisRateLimiter(client, breaker=_breaker("redis", clock, 5))
        # A lease of one: every request asks Redis (the platform leases blocks of hits).
        services = dataclasses.replace(h.services, limiter=LeasedRateLimiter(limiter, 1))
        app = build_app(services, h.tokens, h.settings)
        admin = h.headers(Role.ADMIN, "ops")
        with TestClient(app) as http:
            def get() -> tuple[int, dict[str, str], dict[str, object]]:
                r = http.get("/api/v1/resources", headers=admin)
                return r.status_code, dict(r.headers), r.json()

            assert [get()[0] for _ in range(2)] == [200, 200]
            relay.cut()
            for _ in range(2):  # the limiter's own refusal while the breaker counts
                status, _, body = get()
                assert (status, body["error"]) == (503, "service_unavailable"), body
            tried = relay.accepted
            status, headers, body = get()
            assert (status, body["error"]) == (503, "dependency_unavailable"), body
            assert headers["retry-after"] == "5" and body["retry_after"] == 5
            assert "127.0.0.1" not in str(body) and str(relay.port) not in str(body)
            assert relay.accepted == tried  # failed fast: Redis was not asked

            relay.mend()
            clock.advance(5)
            # The three refused requests counted nothing: three more fit under the limit of
            # five in this window, and the sixth is refused as over it.
            assert [get()[0] for _ in range(4)] == [200, 200, 200, 429]
    finally:
        relay.close()


def test_a_chain_node_away_mid_settlement_loses_and_doubles_nothing(tmp_path: Path) -> None:
    with running_anvil() as url:
        relay = Relay("127.0.0.1", int(urlparse(url).port or 0))
        try:
            settings = Settings(home=tmp_path, chain_rpc_url=f"http://127.0.0.1:{relay.port}",
                                chain_wallet_seed="fault-wallet-seed-0123456789",
                                database_url=f"sqlite:///{tmp_path / 'hcp.db'}")
            chain = open_chain(settings)
            clock = FakeClock()
            chain.client.breaker = _breaker("chain", clock, 15)
            e = chain.escrow
            e.mint("alice", 1000 * ONE_TOKEN, "fund-alice")
            e.lock("job-1", "alice", "prov-1", 100 * ONE_TOKEN)
            supply = e.total_supply()

            # The node takes the settlement, then goes away before its receipt comes back.
            wait = chain.client._receipt

            def away_before_the_receipt(tx_hash: object) -> object:
                relay.cut()
                return wait(tx_hash)

            chain.client._receipt = away_before_the_receipt  # type: ignore[method-assign]
            with pytest.raises(ChainUnavailableError) as e1:
                e.release("job-1", 60 * ONE_TOKEN)
            chain.client._receipt = wait  # type: ignore[method-assign]
            assert e1.value.http_status == 503 and "127.0.0.1" not in str(e1.value.to_dict())

            for _ in range(2):  # calls fail as the node's own trouble while the breaker counts
                with pytest.raises(ChainUnavailableError):
                    e.balance_of("alice")
            tried = relay.accepted
            with pytest.raises(DependencyUnavailableError) as e2:
                e.release("job-1", 60 * ONE_TOKEN)
            assert e2.value.to_dict()["retry_after"] == 15
            assert relay.accepted == tried  # failed fast: the node was not asked

            relay.mend()
            clock.advance(15)
            # The retry finds the settlement the node had taken: paid once, not twice.
            settled = e.release("job-1", 60 * ONE_TOKEN)
            provider, platform = split_payment(60 * ONE_TOKEN)
            assert (settled.to_provider, settled.to_platform, settled.refunded) == (
                provider, platform, 40 * ONE_TOKEN)
            assert chain.client.breaker.state == "closed"
            assert e.balance_of("prov-1") == provider and e.balance_of("platform") == platform
            assert e.balance_of("alice") == 940 * ONE_TOKEN
            assert e.escrowed_total() == 0 and e.total_supply() == supply
        finally:
            relay.close()
