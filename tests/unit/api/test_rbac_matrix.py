"""The reference design's RBAC matrix, cell by cell: every endpoint × every role.

Roles: admin, customer, provider, miner and anonymous. "own" resources belong to the
caller's subject, "other" ones to someone else. Providers and miners are outside the matrix
and get none of its actions (403); anonymous callers get 401 everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hcp.auth.tokens import Role
from serve_apps.access import MATRIX, Action
from tests.unit.api.support import Harness, make_harness

ADMIN, CUSTOMER, PROVIDER, MINER, ANON = "admin", "customer", "provider", "miner", "anonymous"
ROLES = (ADMIN, CUSTOMER, PROVIDER, MINER, ANON)
OTHER = "someone-else"
SPEC = {"type": "inference", "priority": 5}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[Harness, str], str]  # (harness, caller subject) -> path
    body: dict[str, Any] | None
    expected: dict[str, int]


def _subject(role: str) -> str:
    return f"{role}-1"


def _new_workload(h: Harness, owner: str) -> str:
    return asyncio.run(h.workloads.submit(owner, SPEC))["id"]


def _fixed(path: str) -> Callable[[Harness, str], str]:
    return lambda _h, _s: path


def _deny(ok_admin: int = 200, ok_customer: int | None = None) -> dict[str, int]:
    exp = {ADMIN: ok_admin, PROVIDER: 403, MINER: 403, ANON: 401}
    exp[CUSTOMER] = ok_customer if ok_customer is not None else 403
    return exp


ENDPOINTS = [
    # View own workloads
    Endpoint("list own workloads", "GET", _fixed("/api/v1/workloads"), None, _deny(200, 200)),
    Endpoint(
        "get own workload",
        "GET",
        lambda h, s: f"/api/v1/workloads/{_new_workload(h, s)}",
        None,
        _deny(200, 200),
    ),
    # View all workloads
    Endpoint(
        "list another owner's workloads",
        "GET",
        _fixed(f"/api/v1/workloads?owner={OTHER}"),
        None,
        _deny(200, 403),
    ),
    Endpoint(
        "get another's workload",
        "GET",
        lambda h, s: f"/api/v1/workloads/{_new_workload(h, OTHER)}",
        None,
        _deny(200, 404),
    ),
    # Submit workload
    Endpoint("submit workload", "POST", _fixed("/api/v1/workloads"), SPEC, _deny(201, 201)),
    # Terminate own / any workload
    Endpoint(
        "terminate own workload",
        "DELETE",
        lambda h, s: f"/api/v1/workloads/{_new_workload(h, s)}",
        None,
        _deny(200, 200),
    ),
    Endpoint(
        "terminate another's workload",
        "DELETE",
        lambda h, s: f"/api/v1/workloads/{_new_workload(h, OTHER)}",
        None,
        _deny(200, 404),
    ),
    # View resources (fleet, switch history, economics)
    Endpoint("view resources", "GET", _fixed("/api/v1/resources"), None, _deny(200)),
    Endpoint("view switch history", "GET", _fixed("/api/v1/switches"), None, _deny(200)),
    Endpoint("view profitability", "GET", _fixed("/api/v1/profitability"), None, _deny(200)),
    # Modify resources
    Endpoint(
        "modify resources",
        "POST",
        _fixed("/api/v1/resources/devices/g0/mode"),
        {"mode": "IDLE", "reason": "rbac test"},
        _deny(200),
    ),
    # View platform revenue
    Endpoint("view platform revenue", "GET", _fixed("/api/v1/revenue"), None, _deny(200)),
    Endpoint(
        "view another's bill",
        "GET",
        _fixed(f"/api/v1/billing?owner={OTHER}"),
        None,
        _deny(200, 403),
    ),
    # View own billing
    Endpoint("view own billing", "GET", _fixed("/api/v1/billing"), None, _deny(200, 200)),
    # Inference: using GPUs is submitting work
    Endpoint(
        "create embeddings",
        "POST",
        _fixed("/v1/embeddings"),
        {"input": "hello", "model": "all-MiniLM-L6-v2"},
        _deny(200, 200),
    ),
    Endpoint("list models", "GET", _fixed("/v1/models"), None, _deny(200, 200)),
]

CELLS = [pytest.param(e, role, id=f"{e.name}-{role}") for e in ENDPOINTS for role in ROLES]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Harness:
    return make_harness(tmp_path_factory.mktemp("rbac"))


@pytest.fixture(scope="module")
def client(harness: Harness) -> TestClient:
    with TestClient(harness.app) as c:
        yield c


@pytest.mark.parametrize(("endpoint", "role"), CELLS)
def test_matrix_cell(harness: Harness, client: TestClient, endpoint: Endpoint, role: str) -> None:
    subject = _subject(role)
    headers = {} if role == ANON else harness.headers(Role(role), subject)
    path = endpoint.path(harness, subject)
    r = client.request(endpoint.method, path, json=endpoint.body, headers=headers)
    expected = endpoint.expected[role]
    assert r.status_code == expected, (endpoint.name, role, r.status_code, r.text)
    body = r.json()
    if expected >= 400:
        if path.startswith("/v1/"):  # OpenAI's error shape on the OpenAI-compatible routes
            body = {"error": body["error"]["code"], "detail": body["error"]["message"]}
        assert set(body) >= {"error", "detail"}
        assert (
            body["error"]
            == {401: "authentication_required", 403: "forbidden", 404: "workload_not_found"}[
                expected
            ]
        )
        if expected == 401:
            assert r.headers["WWW-Authenticate"] == "Bearer"


def test_the_matrix_is_the_seed_table() -> None:
    """The data the checks read, restated from the seed's table (admin / customer columns)."""
    both, admin = {Role.ADMIN, Role.CUSTOMER}, {Role.ADMIN}
    assert {a: set(r) for a, r in MATRIX.items()} == {
        Action.VIEW_OWN_WORKLOADS: both,
        Action.VIEW_ALL_WORKLOADS: admin,
        Action.SUBMIT_WORKLOAD: both,
        Action.TERMINATE_ANY_WORKLOAD: admin,
        Action.TERMINATE_OWN_WORKLOAD: both,
        Action.VIEW_RESOURCES: admin,
        Action.MODIFY_RESOURCES: admin,
        Action.VIEW_PLATFORM_REVENUE: admin,
        Action.VIEW_OWN_BILLING: both,
    }


def test_customer_lists_only_their_own(harness: Harness, client: TestClient) -> None:
    mine = {_new_workload(harness, "alice") for _ in range(3)}
    _new_workload(harness, "bob")
    r = client.get("/api/v1/workloads?limit=500", headers=harness.headers(Role.CUSTOMER, "alice"))
    assert r.status_code == 200
    ids = {w["id"] for w in r.json()["items"]}
    assert ids == mine
    everyone = client.get(
        "/api/v1/workloads?limit=500", headers=harness.headers(Role.ADMIN, "root")
    ).json()
    assert {w["owner"] for w in everyone["items"]} >= {"alice", "bob"}


def test_customer_cannot_cancel_anothers_workload_and_it_stays_alive(
    harness: Harness, client: TestClient
) -> None:
    wid = _new_workload(harness, "bob")
    r = client.delete(f"/api/v1/workloads/{wid}", headers=harness.headers(Role.CUSTOMER, "mallory"))
    assert r.status_code == 404
    assert harness.workloads.items[wid]["state"] == "queued"
