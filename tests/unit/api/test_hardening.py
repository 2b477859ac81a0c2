"""What an outside attack run found in the platform API, through HTTP over the real router core
and store: batches failed by one customer's bad item, server errors from bad input, lenient
number parsing, work that can never run accepted, a WebSocket outliving its token, and
routes without a rate limit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from hcp.auth.tokens import Role
from hcp.errors import StoreError
from hcp.workloads.repository import Batch, WorkloadRepository
from tests.unit.api.support import Harness, later, make_harness

CUSTOMER = "alice"


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return make_harness(tmp_path, real_router=True, mount_areas=True,
                        api_ws_heartbeat_seconds=0.05, api_live_poll_seconds=0.02)


@pytest.fixture
def client(harness: Harness) -> TestClient:
    return TestClient(harness.app)


def _wl(**kw: Any) -> dict[str, Any]:
    return {"type": "batch", "priority": 5, "duration_seconds": 60, **kw}


class _PoisonRepo(WorkloadRepository):
    """A store that refuses any transaction holding a workload named 'poison', as PostgreSQL
    refuses text it cannot hold: what the router's commit must survive item by item."""

    def apply(self, batch: Batch) -> None:
        if any(r.get("name") == "poison" for r in batch.inserts):
            raise StoreError("invalid byte sequence for encoding UTF8")
        super().apply(batch)


async def _batched_submissions(harness: Harness, specs: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Concurrent HTTP submissions, batched into shared router calls as the ingress does."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=harness.app),
                                 base_url="http://t") as c:
        return await asyncio.gather(*(
            c.post("/api/v1/workloads", json=spec, headers=harness.headers(Role.CUSTOMER, who))
            for who, spec in specs))


def test_one_customers_bad_items_never_fail_another_customers(harness: Harness) -> None:
    good = [("alice", _wl(name=f"job-{i}")) for i in range(120)]
    bad = [("mallory", _wl(name="a\x00b")),  # NUL: PostgreSQL cannot hold it
           ("mallory", _wl(sla={"deadline": "0001-01-01T00:00:00+14:00"})),  # OverflowError
           ("mallory", _wl(priority=True)), ("mallory", _wl(priority="5"))]
    mixed = list(good)
    for i, item in enumerate(bad):
        mixed.insert(10 + 30 * i, item)
    out = asyncio.run(_batched_submissions(harness, mixed))
    codes = {(who, spec.get("name")): r.status_code for (who, spec), r in zip(mixed, out)}
    assert all(codes[("alice", f"job-{i}")] == 201 for i in range(120))
    bad_codes = [r.status_code for (who, _), r in zip(mixed, out) if who == "mallory"]
    assert bad_codes and all(c in (400, 422) for c in bad_codes)
    assert len(harness.router.repo.page("alice", None, None, 500, None)[0]) == 120
    assert max(harness.router.batches) > 1  # the submissions really shared router calls


def test_a_store_refusal_of_one_item_fails_that_item_alone(tmp_path: Path) -> None:
    harness = make_harness(tmp_path, real_router=True)
    core = harness.router
    core.repo = core.core.repo = _PoisonRepo(core.repo.engine)
    specs = [("alice", _wl(name=f"job-{i}")) for i in range(20)]
    specs.insert(7, ("mallory", _wl(name="poison")))
    out = asyncio.run(_batched_submissions(harness, specs))
    assert [r.status_code for r in out].count(201) == 20
    refused = out[7]
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_workload"
    # The refused workload was never stored nor left queued; the others were committed.
    assert len(core.repo.page(None, None, None, 500, None)[0]) == 20
    assert not any(w.name == "poison" for w in core.core.active.values())


@pytest.mark.parametrize(("query", "code"), [
    ("cursor=" + "9" * 35, "validation_error"), ("cursor=-1", "validation_error"),
    ("cursor=abc", "validation_error"), ("limit=1000000000", "validation_error"),
    ("limit=-5", "validation_error")])
def test_bad_cursors_and_limits_are_422_not_500(harness: Harness, client: TestClient, query: str,
                                                code: str) -> None:
    r = client.get(f"/api/v1/workloads?{query}", headers=harness.headers(Role.CUSTOMER, CUSTOMER))
    assert r.status_code == 422 and r.json()["error"] == code, r.text


@pytest.mark.parametrize("field", [{"priority": True}, {"priority": "5"}, {"priority": 5.0},
                                   {"duration_seconds": "60"}, {"interruptible": 1},
                                   {"requirements": {"min_memory_gb": "٣"}}])
def test_numbers_and_flags_are_strict(harness: Harness, client: TestClient, field: dict) -> None:
    r = client.post("/api/v1/workloads", json=_wl(**field),
                    headers=harness.headers(Role.CUSTOMER, CUSTOMER))
    assert r.status_code == 422 and r.json()["error"] == "validation_error", r.text


@pytest.mark.parametrize(("requirements", "why"), [
    ({"gpu_model": "Z9000"}, "no Z9000 GPU in this fleet"),
    ({"gpu_model": "H100", "min_memory_gb": 4000}, "the largest has"),
])
def test_work_the_fleet_can_never_run_is_refused_at_admission(
        harness: Harness, client: TestClient, requirements: dict, why: str) -> None:
    r = client.post("/api/v1/workloads", json=_wl(requirements=requirements),
                    headers=harness.headers(Role.CUSTOMER, CUSTOMER))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "unsatisfiable_workload" and why in r.json()["detail"]
    ok = client.post("/api/v1/workloads", json=_wl(requirements={"gpu_model": "h100"}),
                     headers=harness.headers(Role.CUSTOMER, CUSTOMER))
    assert ok.status_code == 201  # a model the fleet has, in any spelling


def test_a_live_socket_closes_when_its_token_expires(harness: Harness, client: TestClient) -> None:
    token = harness.tokens.issue(CUSTOMER, Role.CUSTOMER, ttl_seconds=5)
    with client.websocket_connect(f"/api/v1/live?token={token}") as ws:
        assert ws.receive_json()["type"] == "welcome"
        later(harness.clock, 9)  # the token is now 4 s past its expiry
        client.post("/api/v1/workloads", json=_wl(name="after-expiry"),
                    headers=harness.headers(Role.CUSTOMER, CUSTOMER))
        msgs = []
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                msgs.append(ws.receive_json())
    assert closed.value.code == 4401
    assert msgs[-1]["error"] == "token_expired"
    assert not [m for m in msgs if m.get("type") == "event"]  # nothing after expiry
    # HTTP refuses the same token at the same moment.
    r = client.get("/api/v1/workloads", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_a_live_message_over_the_cap_closes_the_socket(harness: Harness, client: TestClient) -> None:
    with client.websocket_connect("/api/v1/live") as ws:
        ws.send_text("[" * 100_000)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1009


def test_marketplace_routes_share_the_rate_limit(tmp_path: Path) -> None:
    harness = make_harness(tmp_path, real_router=True, mount_areas=True, api_rate_limit=50)
    client = TestClient(harness.app)
    hdr = harness.headers(Role.CUSTOMER, CUSTOMER)
    codes = [client.get("/api/v1/marketplace/offers", headers=hdr).status_code for _ in range(60)]
    assert codes.count(200) == 50 and codes[50:] == [429] * 10
    r = client.get("/api/v1/marketplace/offers", headers=hdr)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # The same limiter counts the platform's own routes for this customer.
    assert client.get("/api/v1/workloads", headers=hdr).status_code == 429


@pytest.mark.parametrize(("amount", "status", "code"), [
    ("٣", 422, "validation_error"), ("1e3", 422, "validation_error"), (True, 422, "validation_error"),
    (10**78, 422, "validation_error"), (-1, 422, "validation_error")])
def test_mint_amounts_are_strict(harness: Harness, client: TestClient, amount: Any, status: int,
                                 code: str) -> None:
    r = client.post("/api/v1/marketplace/ledger/mint",
                    json={"account": "bob", "amount": amount, "op_id": "m1"},
                    headers=harness.headers(Role.ADMIN, "ops"))
    assert r.status_code == status and r.json()["error"] == code, r.text


def test_minting_past_a_uint256_supply_is_a_409_not_a_503(harness: Harness,
                                                          client: TestClient) -> None:
    hdr = harness.headers(Role.ADMIN, "ops")
    top = client.post("/api/v1/marketplace/ledger/mint",
                      json={"account": "bob", "amount": str(2**256 - 1), "op_id": "m-top"},
                      headers=hdr)
    assert top.status_code == 201, top.text
    over = client.post("/api/v1/marketplace/ledger/mint",
                       json={"account": "carol", "amount": 1, "op_id": "m-over"}, headers=hdr)
    assert over.status_code == 409 and over.json()["error"] == "supply_limit_exceeded"
    books = client.get("/api/v1/marketplace/ledger", headers=hdr).json()
    assert books["total_supply"] == str(2**256 - 1) and "carol" not in books["balances"]


def test_a_forged_offer_cursor_is_a_422(harness: Harness, client: TestClient) -> None:
    import base64
    import json

    for forged in (["price_asc", "9" * 100, "x"], ["price_asc", "1", "a\u0000b"],
                   ["newest", "0001-01-01T00:00:00+14:00", "abc"], ["reputation_desc", 10**30, "a"]):
        cur = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
        sort = forged[0]
        r = client.get(f"/api/v1/marketplace/offers?sort={sort}&cursor={cur}",
                       headers=harness.headers(Role.CUSTOMER, CUSTOMER))
        assert r.status_code == 422 and r.json()["error"] == "validation_error", (forged, r.text)


@pytest.mark.parametrize(("method", "path", "role"), [
    ("GET", "/api/v1/marketplace/jobs/{}", Role.CUSTOMER),
    ("POST", "/api/v1/marketplace/jobs/{}/resolve", Role.ADMIN),
    ("GET", "/api/v1/marketplace/offers/{}", Role.CUSTOMER),
    ("GET", "/api/v1/instances/{}", Role.CUSTOMER),
])
def test_record_ids_in_paths_are_bounded_at_the_edge(harness: Harness, client: TestClient,
                                                      method: str, path: str, role: Role) -> None:
    hdr = harness.headers(role, "ops" if role is Role.ADMIN else CUSTOMER)
    for bad in ("a" * 37, "%E2%80%AE1", "a.b", "a%20b"):  # (a NUL is the edge's 400)
        r = client.request(method, path.format(bad), headers=hdr, json={"outcome": "user_fault"})
        assert r.status_code == 422 and r.json()["error"] == "validation_error", (path, bad, r.text)
    # A well-formed id that names nothing is a 404, as before.
    r = client.request(method, path.format("0" * 36), headers=hdr, json={"outcome": "user_fault"})
    assert r.status_code == 404, r.text
