"""The PostgreSQL breaker on a real server behind a TCP relay this test can cut: while the
server is unreachable the store's calls fail as typed 503s, after a few failures they fail
fast without a connection attempt, one probe after the recovery time closes the breaker once
the server is back, and what was committed before the outage is all still there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from hcp.errors import StoreError, StoreUnavailableError
from hcp.fleet.repository import FleetRepository
from hcp.resilience import BreakerPolicy, BreakerSettings, Dependency, configure_process_breakers
from hcp.store import connect, migrate
from tests.relay import Relay
from tests.unit.resilience.test_breakers import FakeClock


@pytest.fixture
def relayed(database_url: str) -> Iterator[tuple[str, Relay]]:
    url = make_url(database_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    yield url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False), relay
    relay.close()


def test_a_store_call_fails_fast_while_postgres_is_away_and_recovers(
        relayed: tuple[str, Relay]) -> None:
    import hcp.resilience.registry as registry

    before, clock = registry._PROCESS, FakeClock()
    url, relay = relayed
    configure_process_breakers(BreakerSettings(postgres=BreakerPolicy(
        failure_threshold=2, recovery_seconds=10, timeout_seconds=5)), clock=clock)
    engine = connect(url)
    try:
        migrate(engine)
        repo = FleetRepository(engine)
        repo.record_event("switch_committed", device_id="gpu-0", payload={"n": 1})
        breaker = registry.process_breakers().get(Dependency.POSTGRES)
        assert breaker.state == "closed"

        relay.cut()
        for _ in range(2):  # each a connection attempt the server does not answer
            with pytest.raises(StoreUnavailableError) as e:
                repo.record_event("switch_committed", device_id="gpu-0", payload={"n": 2})
            assert isinstance(e.value, StoreError)  # the loops that retry a store outage see it
            body = e.value.to_dict()
            assert (e.value.http_status, body["error"]) == (503, "dependency_unavailable")
            assert str(relay.port) not in str(body) and "127.0.0.1" not in str(body)
        assert breaker.state == "open"
        tried = relay.accepted
        with pytest.raises(StoreUnavailableError) as e:
            repo.events(device_id="gpu-0")
        assert e.value.to_dict()["retry_after"] == 10
        assert relay.accepted == tried  # failed fast: no connection was attempted

        relay.mend()
        clock.advance(10)
        events = repo.events(device_id="gpu-0")  # the half-open probe goes through
        assert breaker.state == "closed"
        assert [ev.payload for ev in events] == [{"n": 1}]  # kept; the refused write never landed
        repo.record_event("switch_committed", device_id="gpu-0", payload={"n": 2})
        assert [ev.payload for ev in repo.events(device_id="gpu-0")] == [{"n": 2}, {"n": 1}]
    finally:
        engine.dispose()
        registry._PROCESS = before
