"""Workloads through the SDK against the real app: typed results, pages, refusals, retries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from hcp.auth.tokens import Role
from hcp.client import AsyncHcpClient, HcpClient, RetryPolicy
from hcp.errors import (
    ApiUnreachableError,
    AuthenticationError,
    IdempotencyKeyReusedError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
    WorkloadNotFoundError,
    WorkloadTransitionError,
)
from hcp.workloads.types import Requirements, WorkloadSpec, WorkloadState, WorkloadType
from tests.unit.api.support import later
from tests.unit.client.flaky import FlakyTransport
from tests.unit.client.support import Platform, leftovers, make_platform, run

SPEC = {"type": "batch", "priority": 3, "duration_seconds": 60}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    return make_platform(Path(tmp_path_factory.mktemp("workloads")))


@pytest.fixture(scope="module")
def http(platform: Platform) -> Iterator[TestClient]:
    with TestClient(platform.app, base_url="http://hcp") as tc:
        yield tc


def _client(platform: Platform, http: TestClient, role: Role, subject: str) -> HcpClient:
    return HcpClient(http=http, token=platform.token(role, subject), sleep=lambda s: None)


def test_submit_read_page_and_cancel(platform: Platform, http: TestClient) -> None:
    alice = _client(platform, http, Role.CUSTOMER, "alice-sync")
    submitted = [
        alice.submit_workload(WorkloadSpec(type=WorkloadType.EMBEDDING, priority=5, name="typed",
                                           requirements=Requirements(gpu_model="H100"))),
        alice.submit_workload(SPEC),
        alice.submit_workload(type="training", priority=9, interruptible=False),
        *[alice.submit_workload(SPEC, idempotency_key=f"batch-{i}") for i in range(2)],
    ]
    first = submitted[0]
    assert (first.type, first.state, first.owner) == (WorkloadType.EMBEDDING, WorkloadState.QUEUED,
                                                      "alice-sync")
    assert first.requirements["gpu_model"] == "H100" and not first.replayed
    assert submitted[3].idempotency_key == "batch-0"
    assert leftovers(first) == []  # the model declares every field the server sent
    assert alice.get_workload(first.id) == first
    page = alice.list_workloads(limit=2)
    assert len(page.items) == 2 and page.next_cursor is not None
    every = list(alice.iter_workloads(page_size=2))
    assert sorted(w.id for w in every) == sorted(w.id for w in submitted)  # each once, all pages
    assert [w.id for w in alice.iter_workloads(type="training")] == [submitted[2].id]
    cancelled = alice.cancel_workload(submitted[1].id)
    assert cancelled.state is WorkloadState.CANCELLED and cancelled.terminal
    assert alice.wait_workload(submitted[1].id, timeout_s=0) == alice.get_workload(submitted[1].id)
    assert [w.id for w in alice.iter_workloads(state="cancelled")] == [submitted[1].id]
    admin = _client(platform, http, Role.ADMIN, "root")
    assert {w.id for w in admin.iter_workloads(owner="alice-sync")} == {w.id for w in submitted}


def test_the_async_client_does_the_same(platform: Platform) -> None:
    async def go() -> None:
        async with platform.asgi() as http, AsyncHcpClient(
                http=http, token=platform.token(Role.CUSTOMER, "alice-async")) as c:
            ws = [await c.submit_workload(SPEC, idempotency_key=f"a-{i}") for i in range(3)]
            again = await c.submit_workload(SPEC, idempotency_key="a-1")
            assert again.replayed and again.id == ws[1].id
            assert sorted([w.id async for w in c.iter_workloads(page_size=1)]) == sorted(w.id for w in ws)
            done = await c.cancel_workload(ws[0].id)
            assert (await c.wait_workload(done.id, timeout_s=0)).state is WorkloadState.CANCELLED
            with pytest.raises(WorkloadNotFoundError):
                await c.get_workload("no-such-workload")

    run(go())


def test_refusals_are_the_typed_errors_of_their_codes(platform: Platform, http: TestClient) -> None:
    bob = _client(platform, http, Role.CUSTOMER, "bob")
    mine = bob.submit_workload(SPEC, idempotency_key="order-1")
    with pytest.raises(IdempotencyKeyReusedError) as reused:  # the key, with another body
        bob.submit_workload({**SPEC, "priority": 4}, idempotency_key="order-1")
    assert reused.value.http_status == 409 and reused.value.context["workload_id"] == mine.id
    eve = _client(platform, http, Role.CUSTOMER, "eve")
    with pytest.raises(WorkloadNotFoundError) as hidden:  # another's workload reads as missing
        eve.get_workload(mine.id)
    assert hidden.value.code == "workload_not_found" and hidden.value.body["error"] == "workload_not_found"  # type: ignore[attr-defined]
    with pytest.raises(PermissionDeniedError):
        eve.list_workloads(owner="bob")
    with pytest.raises(PermissionDeniedError):
        _client(platform, http, Role.MINER, "m").submit_workload(SPEC)
    with pytest.raises(AuthenticationError):
        HcpClient(http=http, token="").list_workloads()
    bob.cancel_workload(mine.id)
    with pytest.raises(WorkloadTransitionError):
        bob.cancel_workload(mine.id)
    before = len(list(bob.iter_workloads()))
    with pytest.raises(ValidationError) as bad:  # refused here, with the API's code: never sent
        bob.submit_workload({**SPEC, "priority": 11})
    assert bad.value.code == "validation_error" and bad.value.context["problems"][0]["loc"] == ["priority"]
    assert len(list(bob.iter_workloads())) == before
    with pytest.raises(ValidationError) as server_side:
        bob.list_workloads(limit=10_000)
    assert server_side.value.http_status == 422
    assert server_side.value.context["problems"][0]["loc"] == ["query", "limit"]


def test_a_lost_answer_is_resent_with_the_same_key_and_lands_once(platform: Platform) -> None:
    flaky = FlakyTransport(httpx.ASGITransport(app=platform.app), "POST", "/api/v1/workloads", times=2)
    waits: list[float] = []

    async def go() -> None:
        async with httpx.AsyncClient(transport=flaky, base_url="http://hcp") as http:
            c = AsyncHcpClient(http=http, token=platform.token(Role.CUSTOMER, "carol"),
                               sleep=waits.append, seed=1)
            w = await c.submit_workload(SPEC)
            assert w.replayed  # the first attempt created it; the third got it back
            assert [x.id async for x in c.iter_workloads()] == [w.id]

    run(go())
    assert flaky.reached == 3 and len(waits) == 2 and all(x > 0 for x in waits)


def test_an_unsafe_call_is_resent_only_when_it_cannot_have_arrived(platform: Platform) -> None:
    async def embed(lose_answer: bool, subject: str) -> tuple[object, int]:
        flaky = FlakyTransport(httpx.ASGITransport(app=platform.app), "POST", "/v1/embeddings",
                               lose_answer=lose_answer)
        async with httpx.AsyncClient(transport=flaky, base_url="http://hcp") as http:
            c = AsyncHcpClient(http=http, token=platform.token(Role.CUSTOMER, subject),
                               sleep=lambda s: None)
            try:
                out: object = await c.embed(["one text"], model=platform.harness.settings.fleet.inference_model)
            except ApiUnreachableError as exc:
                out = exc
            return out, (await c.billing()).inference.requests

    refused_connect, metered = run(embed(lose_answer=False, subject="dan"))
    assert not isinstance(refused_connect, Exception) and metered == 1  # retried: never sent before
    lost, metered = run(embed(lose_answer=True, subject="dora"))
    assert isinstance(lost, ApiUnreachableError) and metered == 1  # not resent: it was metered


def test_rate_limited_requests_wait_their_retry_after(tmp_path: Path) -> None:
    p = make_platform(tmp_path, api_rate_limit=2, api_rate_window_seconds=30)
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the platform's clock moves instead of the test waiting
        waits.append(seconds)
        later(p.harness.clock, seconds)

    token = p.token(Role.CUSTOMER, "fast")  # issued before the clock moves (PyJWT checks iat)
    with TestClient(p.app, base_url="http://hcp") as http:
        c = HcpClient(http=http, token=token, sleep=sleep)
        for _ in range(3):
            c.list_workloads()
        assert len(waits) == 1 and 0 < waits[0] <= 30
        impatient = HcpClient(http=http, token=token, sleep=sleep,
                              retry=RetryPolicy(max_wait_s=0.5))
        impatient.list_workloads()
        with pytest.raises(RateLimitedError) as limited:  # a longer wait is raised, not slept
            impatient.list_workloads()
        assert limited.value.retry_after > 0.5 and len(waits) == 1
