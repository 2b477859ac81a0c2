"""Behaviour of the platform API beyond the access matrix: pagination, filters, errors, limits."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient

from hcp.auth.tokens import Role
from tests.unit.api.support import Harness, later, make_harness


@pytest.fixture
def harness(tmp_path) -> Harness:  # type: ignore[no-untyped-def]
    return make_harness(tmp_path, api_rate_limit=1000)


@pytest.fixture
def client(harness: Harness) -> TestClient:
    with TestClient(harness.app) as c:
        yield c


def _submit(client: TestClient, h: Harness, who: str, **spec) -> dict:  # type: ignore[no-untyped-def]
    body = {"type": "inference", "priority": 5} | spec
    r = client.post("/api/v1/workloads", json=body, headers=h.headers(Role.CUSTOMER, who))
    assert r.status_code == 201, r.text
    return r.json()


def test_submit_returns_the_view_and_get_reads_it_back(
    harness: Harness, client: TestClient
) -> None:
    w = _submit(
        client,
        harness,
        "alice",
        type="training",
        priority=9,
        name="fine-tune",
        requirements={"gpu_model": "H100", "min_memory_gb": 80},
        sla={"max_latency_ms": 50},
        interruptible=False,
        duration_seconds=120,
    )
    assert (w["owner"], w["type"], w["priority"], w["state"]) == ("alice", "training", 9, "queued")
    assert w["requirements"]["gpu_model"] == "H100" and w["interruptible"] is False
    got = client.get(
        f"/api/v1/workloads/{w['id']}", headers=harness.headers(Role.CUSTOMER, "alice")
    )
    assert got.status_code == 200 and got.json() == w


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "mining", "priority": 5},
        {"type": "inference", "priority": 11},
        {"type": "inference", "priority": 0},
        {"type": "inference"},
        {"type": "inference", "priority": 5, "duration_seconds": 0},
        {"type": "inference", "priority": 5, "requirements": {"min_memory_gb": 0}},
        {"type": "inference", "priority": 5, "surprise": True},
    ],
)
def test_invalid_specs_are_422_with_field_detail(
    harness: Harness, client: TestClient, bad: dict
) -> None:
    r = client.post("/api/v1/workloads", json=bad, headers=harness.headers(Role.CUSTOMER, "alice"))
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "validation_error" and body["detail"] and "loc" in body["detail"][0]
    assert not harness.workloads.items


def test_list_paginates_and_filters(harness: Harness, client: TestClient) -> None:
    ids = [
        _submit(client, harness, "alice", type="training" if i % 2 else "inference")["id"]
        for i in range(7)
    ]
    hdr = harness.headers(Role.CUSTOMER, "alice")
    seen, cursor = [], None
    while True:
        r = client.get(
            "/api/v1/workloads",
            params={"limit": 3, **({"cursor": cursor} if cursor else {})},
            headers=hdr,
        )
        assert r.status_code == 200
        page = r.json()
        assert len(page["items"]) <= 3
        seen += [w["id"] for w in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    training = client.get("/api/v1/workloads", params={"type": "training"}, headers=hdr).json()[
        "items"
    ]
    assert {w["id"] for w in training} == set(ids[1::2])
    client.delete(f"/api/v1/workloads/{ids[0]}", headers=hdr)
    cancelled = client.get("/api/v1/workloads", params={"state": "cancelled"}, headers=hdr).json()[
        "items"
    ]
    assert [w["id"] for w in cancelled] == [ids[0]]
    assert (
        client.get("/api/v1/workloads", params={"state": "sleeping"}, headers=hdr).status_code
        == 422
    )
    assert client.get("/api/v1/workloads", params={"limit": 0}, headers=hdr).status_code == 422


def test_terminating_twice_is_409(harness: Harness, client: TestClient) -> None:
    w = _submit(client, harness, "alice")
    hdr = harness.headers(Role.CUSTOMER, "alice")
    assert client.delete(f"/api/v1/workloads/{w['id']}", headers=hdr).json()["state"] == "cancelled"
    again = client.delete(f"/api/v1/workloads/{w['id']}", headers=hdr)
    assert again.status_code == 409 and again.json()["error"] == "invalid_workload_transition"


def test_unknown_workload_is_404(harness: Harness, client: TestClient) -> None:
    r = client.get("/api/v1/workloads/w999999", headers=harness.headers(Role.ADMIN, "root"))
    assert r.status_code == 404 and r.json()["error"] == "workload_not_found"


def test_rate_limit_is_per_client_with_retry_after(tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(tmp_path, api_rate_limit=3, api_rate_window_seconds=60)
    with TestClient(h.app) as c:
        alice, bob = h.headers(Role.CUSTOMER, "alice"), h.headers(Role.CUSTOMER, "bob")
        assert [c.get("/api/v1/workloads", headers=alice).status_code for _ in range(3)] == [
            200
        ] * 3
        r = c.get("/api/v1/workloads", headers=alice)
        assert r.status_code == 429 and r.json()["error"] == "rate_limited"
        retry = int(r.headers["Retry-After"])
        assert 1 <= retry <= 60 and r.json()["retry_after"] == retry
        assert (
            c.get("/api/v1/workloads", headers=bob).status_code == 200
        )  # another client is unaffected
        later(h.clock, retry)
        assert c.get("/api/v1/workloads", headers=alice).status_code == 200


def test_expired_and_forged_tokens_are_401(harness: Harness, client: TestClient) -> None:
    token = harness.tokens.issue("alice", Role.CUSTOMER, ttl_seconds=60)
    used = harness.tokens.issue("bob", Role.CUSTOMER, ttl_seconds=60)
    ok = client.get("/api/v1/workloads", headers={"Authorization": f"Bearer {used}"})
    assert ok.status_code == 200  # verified once (and remembered by the token service)
    later(harness.clock, 61)
    for t in (token, used):
        r = client.get("/api/v1/workloads", headers={"Authorization": f"Bearer {t}"})
        assert r.status_code == 401 and r.json()["error"] == "authentication_required"
    r = client.get("/api/v1/workloads", headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401


def test_resources_are_filtered_by_facility_and_mode(harness: Harness, client: TestClient) -> None:
    hdr = harness.headers(Role.ADMIN, "root")
    client.post("/api/v1/resources/devices/g1/mode", json={"mode": "inference"}, headers=hdr)
    res = client.get("/api/v1/resources", headers=hdr).json()
    assert {g["device_id"]: g["mode"] for g in res["gpus"]} == {"g0": "MINING", "g1": "INFERENCE"}
    assert res["asics"] == [{"id": "s21-0", "facility": "lab", "mode": "MINING"}]
    assert set(res["modes"]) == {"MINING", "INFERENCE", "IDLE", "CURTAILED", "RENTED"}
    only = client.get("/api/v1/resources", params={"mode": "INFERENCE"}, headers=hdr).json()
    assert [g["device_id"] for g in only["gpus"]] == ["g1"] and only["asics"] == []
    assert (
        client.get("/api/v1/resources", params={"facility": "nowhere"}, headers=hdr).json()["gpus"]
        == []
    )
    bad = client.post("/api/v1/resources/devices/g1/mode", json={"mode": "TURBO"}, headers=hdr)
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_mode"
    missing = client.post("/api/v1/resources/devices/nope/mode", json={"mode": "IDLE"}, headers=hdr)
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_device"


def test_switch_history_pages_newest_first_and_filters_by_device(
    harness: Harness, client: TestClient
) -> None:
    hdr = harness.headers(Role.ADMIN, "root")
    for mode in ("INFERENCE", "MINING", "INFERENCE"):
        for dev in ("g0", "g1"):
            assert (
                client.post(
                    f"/api/v1/resources/devices/{dev}/mode", json={"mode": mode}, headers=hdr
                ).status_code
                == 200
            )
    first = client.get("/api/v1/switches", params={"limit": 4}, headers=hdr).json()
    assert len(first["items"]) == 4 and first["next_cursor"] is not None
    rest = client.get(
        "/api/v1/switches", params={"limit": 4, "cursor": first["next_cursor"]}, headers=hdr
    ).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6
    assert all(
        e["total_ms"] == pytest.approx(0.5) and e["phases_ms"]["activate"] == pytest.approx(0.2)
        for e in first["items"]
    )
    g1 = client.get("/api/v1/switches", params={"device": "g1"}, headers=hdr).json()["items"]
    assert [(e["from_mode"], e["to_mode"]) for e in g1] == [
        ("MINING", "INFERENCE"),
        ("INFERENCE", "MINING"),
        ("MINING", "INFERENCE"),
    ]
    assert client.get("/api/v1/switches", params={"cursor": "abc"}, headers=hdr).status_code == 422


def test_a_switch_through_the_api_is_committed_with_its_request_id(
    harness: Harness, client: TestClient
) -> None:
    hdr = harness.headers(Role.ADMIN, "root")
    r = client.post("/api/v1/resources/devices/g1/mode", json={"mode": "inference"},
                    headers={**hdr, "X-Request-ID": "req-7f3a"})
    assert r.status_code == 200 and r.json()["correlation_id"] == "req-7f3a"
    assert r.headers["x-request-id"] == "req-7f3a"
    unnamed = client.post("/api/v1/resources/devices/g0/mode", json={"mode": "idle"}, headers=hdr)
    made = unnamed.headers["x-request-id"]  # the edge made one up: still committed with it
    assert made and unnamed.json()["correlation_id"] == made
    log = client.get("/api/v1/switches", headers=hdr).json()["items"]
    assert [(e["device_id"], e["correlation_id"]) for e in log] == [("g0", made), ("g1", "req-7f3a")]


def test_profitability_is_503_without_an_optimizer(harness: Harness, client: TestClient) -> None:
    hdr = harness.headers(Role.ADMIN, "root")
    assert (
        client.get("/api/v1/profitability", headers=hdr).json()["devices"]["g0"]["INFERENCE"] == 2.5
    )
    harness.economics.available = False
    # The replica's snapshot answers until it is older than the longest age it may be served.
    assert client.get("/api/v1/profitability", headers=hdr).status_code == 200
    later(harness.clock, harness.settings.api.snapshot_max_age_seconds + 0.1)
    r = client.get("/api/v1/profitability", headers=hdr)
    assert r.status_code == 503 and r.json()["error"] == "optimizer_unavailable"


def test_embeddings_openai_shape_formats_and_usage(harness: Harness, client: TestClient) -> None:
    hdr = harness.headers(Role.CUSTOMER, "alice")
    one = client.post(
        "/v1/embeddings", json={"input": "two words", "model": "all-MiniLM-L6-v2"}, headers=hdr
    )
    assert one.status_code == 200
    body = one.json()
    assert body["object"] == "list" and body["model"] == "all-MiniLM-L6-v2"
    assert body["data"] == [{"object": "embedding", "index": 0, "embedding": [9.0, 0.0, 0.5]}]
    assert body["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    many = client.post(
        "/v1/embeddings",
        json={"input": ["a", "bb c"], "model": "all-MiniLM-L6-v2", "encoding_format": "base64"},
        headers=hdr,
    ).json()
    decoded = [
        np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4").tolist() for d in many["data"]
    ]
    assert decoded == [[1.0, 0.0, 0.5], [4.0, 1.0, 0.5]]
    assert many["usage"]["prompt_tokens"] == 3 + 4
    bill = client.get("/api/v1/billing", headers=hdr).json()
    assert bill["inference"]["requests"] == 2 and bill["inference"]["input_tokens"] == 11
    revenue = client.get("/api/v1/revenue", headers=harness.headers(Role.ADMIN, "root")).json()
    assert revenue["inference"]["input_tokens"] == 11


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"input": "x", "model": "gpt-4"}, 404, "model_not_found"),
        ({"input": "", "model": "all-MiniLM-L6-v2"}, 422, "validation_error"),
        ({"input": [], "model": "all-MiniLM-L6-v2"}, 422, "validation_error"),
        ({"input": ["x"] * 257, "model": "all-MiniLM-L6-v2"}, 422, "validation_error"),
        ({"input": [1, 2, 3], "model": "all-MiniLM-L6-v2"}, 422, "validation_error"),
        ({"input": "x", "model": "all-MiniLM-L6-v2", "dimensions": 3}, 422, "validation_error"),
        (
            {"input": "x", "model": "all-MiniLM-L6-v2", "encoding_format": "hex"},
            422,
            "validation_error",
        ),
    ],
)
def test_embeddings_refusals(
    harness: Harness, client: TestClient, body: dict, status: int, code: str
) -> None:
    r = client.post("/v1/embeddings", json=body, headers=harness.headers(Role.CUSTOMER, "alice"))
    # OpenAI's error shape, so the official client shows the message and the code
    err = r.json()["error"]
    assert r.status_code == status and err["code"] == code and err["message"]
    assert harness.services.embedder.calls == []  # type: ignore[union-attr]


def test_openapi_documents_every_refusal(harness: Harness) -> None:
    doc = harness.app.openapi()
    ops = [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items()]
    assert len(ops) >= 12
    for path, method, op in ops:
        codes = set(op["responses"])
        assert {"401", "429"} <= codes, (path, method)
        for c in codes - {"200", "201"}:
            ref = op["responses"][c]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorBody"), (path, method, c)
    assert "HTTPBearer" in doc["components"]["securitySchemes"]


def test_a_workloads_container_output_is_served_to_its_owner_only(
    harness: Harness, client: TestClient
) -> None:
    from hcp.agent.messages import LogLine
    from hcp.agent.store import SqlRunStore

    w = _submit(client, harness, "alice", type="batch")
    SqlRunStore(harness.repo.engine).append_logs(w["id"], [
        LogLine(0, "stdout", 1_700_000_000_000_000_000, "epoch 1 loss 0.9"),
        LogLine(1, "stderr", 1_700_000_000_500_000_000, "warning: slow disk"),
        LogLine(2, "stdout", 1_700_000_001_000_000_000, "done")])
    url = f"/api/v1/workloads/{w['id']}/logs"
    alice = harness.headers(Role.CUSTOMER, "alice")
    body = client.get(url, headers=alice, params={"limit": 2}).json()
    assert [(x["seq"], x["stream"], x["text"]) for x in body["items"]] == [
        (0, "stdout", "epoch 1 loss 0.9"), (1, "stderr", "warning: slow disk")]
    assert body["next_after"] == 1
    rest = client.get(url, headers=alice, params={"after": body["next_after"]}).json()
    assert [x["text"] for x in rest["items"]] == ["done"] and rest["next_after"] == 2
    # Another customer's workload reads as missing; an admin sees it.
    other = client.get(url, headers=harness.headers(Role.CUSTOMER, "bob"))
    assert other.status_code == 404 and other.json()["error"] == "workload_not_found"
    assert client.get(url, headers=harness.headers(Role.ADMIN, "root")).status_code == 200
    bad = client.get(url, headers=alice, params={"limit": 0})
    assert bad.status_code == 422
