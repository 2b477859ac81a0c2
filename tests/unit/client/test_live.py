"""The live feed over a real WebSocket (uvicorn on a loopback port): every event exactly once,
across a server restart with events written while it was down."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from hcp.auth.tokens import Role
from hcp.client import AsyncHcpClient, Event, HcpClient, RetryPolicy
from hcp.errors import AuthenticationError, PermissionDeniedError
from tests.unit.client.flaky import FlakySyncTransport
from tests.unit.client.support import Platform, Server, make_platform, run

FAST = RetryPolicy(max_attempts=400, backoff_s=0.02, max_backoff_s=0.1)  # reconnects while it restarts
_IDS = itertools.count(1)


def _write(p: Platform, n: int) -> list[int]:
    """n workload events straight into the event log; their ids."""
    ids = []
    for _ in range(n):
        wid = f"w-{next(_IDS)}"
        p.harness.repo.record_event("workload", payload={"workload_id": wid, "owner": "alice",
                                                         "state": "queued", "device_id": None})
        ids.append(p.harness.repo.events(limit=1)[0].id)
    return ids


async def _until(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Platform, Server]]:
    heartbeat = getattr(request, "param", 0.2)
    p = make_platform(tmp_path, api_ws_heartbeat_seconds=heartbeat, api_live_poll_seconds=0.02)
    server = Server(p)
    server.start()
    try:
        yield p, server
    finally:
        server.stop()


# A short heartbeat moves the cursor past what was delivered before the drop; a long one
# leaves it at the welcome, so the server resends those events and the client must drop them.
@pytest.mark.parametrize("served", [0.2, 30.0], indirect=True, ids=["heartbeats", "no-heartbeat"])
def test_resumes_after_a_server_restart_without_losing_or_repeating(
        served: tuple[Platform, Server]) -> None:
    p, server = served
    got: list[Event] = []

    async def go() -> tuple[list[int], int, int]:
        client = AsyncHcpClient(server.url, p.token(Role.ADMIN, "root"))
        feed = client.live(retry=FAST, idle_timeout=60)

        async def consume() -> None:
            async for event in feed:
                got.append(event)

        task = asyncio.create_task(consume())
        await _until(lambda: feed.cursor is not None, "welcome")
        before = _write(p, 3)
        await _until(lambda: len(got) == 3, "first events")
        if p.harness.settings.api.ws_heartbeat_seconds < 1:
            await _until(lambda: (feed.cursor or 0) >= before[-1], "a heartbeat past them")
        server.stop()
        during = await asyncio.to_thread(_write, p, 3)  # committed while nobody serves
        server.start()
        await _until(lambda: len(got) >= 6, "events written while down")
        after = _write(p, 2)
        await _until(lambda: len(got) >= 8, "events after the restart")
        await asyncio.sleep(0.3)  # room for a duplicate to show up, if one were let through
        task.cancel()
        await feed.aclose()
        return before + during + after, feed.reconnects, feed.repeats

    expected, reconnects, repeats = run(go())
    assert [e.id for e in got] == expected  # each once, in order, none lost
    assert all(e.kind == "workload" and e.payload and e.payload["owner"] == "alice" for e in got)
    assert reconnects >= 1
    if p.harness.settings.api.ws_heartbeat_seconds > 1:
        assert repeats >= 3  # the server resent the first three; none reached the caller


def test_the_sync_feed_resumes_from_a_cursor(served: tuple[Platform, Server]) -> None:
    p, server = served
    first = _write(p, 2)
    client = HcpClient(server.url, p.token(Role.ADMIN, "root"))
    with client.live(after=first[0] - 1, retry=FAST, idle_timeout=10) as feed:
        assert [next(feed).id for _ in range(2)] == first
        server.stop()
        second = _write(p, 2)
        server.start()
        assert [next(feed).id for _ in range(2)] == second
        assert feed.reconnects >= 1
        cursor = feed.cursor
    assert cursor is not None and cursor >= first[0] - 1
    # A later process resumes from the saved cursor: nothing it already saw, nothing skipped.
    third = _write(p, 1)
    with client.live(after=second[-1], retry=FAST, idle_timeout=10) as later:
        assert next(later).id == third[0]


def test_refusals_end_the_feed_with_their_typed_error(served: tuple[Platform, Server]) -> None:
    p, server = served

    async def go() -> None:
        with pytest.raises(AuthenticationError):
            async with AsyncHcpClient(server.url, "not-a-token").live(retry=FAST) as feed:
                await feed.__anext__()
        with pytest.raises(PermissionDeniedError):
            async with AsyncHcpClient(server.url, p.token(Role.MINER, "m")).live(retry=FAST) as feed:
                await feed.__anext__()

    run(go())


def test_the_sync_client_resends_a_lost_submission_and_it_lands_once(
        served: tuple[Platform, Server]) -> None:
    p, server = served
    flaky = FlakySyncTransport(httpx.HTTPTransport(), "POST", "/api/v1/workloads")
    with httpx.Client(transport=flaky, base_url=server.url) as http:
        c = HcpClient(http=http, token=p.token(Role.CUSTOMER, "sync-sub"), sleep=lambda s: None)
        w = c.submit_workload(type="batch", priority=2)
        assert w.replayed and [x.id for x in c.iter_workloads()] == [w.id]
    assert flaky.reached == 2
