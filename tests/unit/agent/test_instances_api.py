"""The instance and agent routes over HTTP (TestClient, SQLite, no Docker): RBAC, validation,
the renter's stop, and the agent's HTTP ports round-tripping through them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from hcp.agent.http_ports import HttpMarketplace, HttpRunStore
from hcp.agent.messages import (
    LogLine,
    MetricSample,
    NetworkMode,
    Phase,
    Reason,
    ResumePoint,
    RunRecord,
)
from hcp.agent.store import SqlRunStore
from hcp.auth.tokens import Role, TokenService
from hcp.client import HcpClient
from hcp.client.transport import SyncTransport
from hcp.config import Settings
from hcp.errors import InstanceNotFoundError, JobTransitionError
from hcp.marketplace.escrow_backend import ONE_TOKEN
from hcp.marketplace.offers import OfferSpec
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from hcp.marketplace.wallet import WalletLogin
from serve_apps.edge import new_app
from serve_apps.instances.routes import InstancesDeps, router
from serve_apps.instances.streams import pack
from serve_apps.marketplace.routes import MarketplaceDeps
from serve_apps.marketplace.routes import router as marketplace_router
from tests.unit.agent.conftest import CID, PROVIDER, RENTER
from tests.unit.agent.fakes import ManualClock


class Api:
    def __init__(self, client: TestClient, tokens: TokenService, service: MarketplaceService,
                 offer_id: str, clock: ManualClock) -> None:
        self.client, self.tokens, self.service, self.offer_id, self.clock = client, tokens, service, offer_id, clock

    def h(self, who: str, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(who, role)}"}

    def call(self, method: str, path: str, who: str, role: Role, status: int = 200, **kw):  # type: ignore[no-untyped-def]
        r = self.client.request(method, path, headers=self.h(who, role), **kw)
        assert r.status_code == status, r.text
        return r.json()


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[Api]:
    clock = ManualClock()
    settings = Settings(home=tmp_path, jwt_secret="s" * 40, api_rate_limit_backend="memory")
    ledger = SqlEscrowBackend(engine)
    service = MarketplaceService(engine, ledger, settings, clock)
    ledger.mint(RENTER.subject, 1000 * ONE_TOKEN, "fund")
    offer = service.register_offer(PROVIDER, OfferSpec("L40S", 4, 8, 20, 3600 * ONE_TOKEN, "lab"))
    tokens = TokenService("s" * 40, clock=clock)
    app = new_app(settings, title="t", version="1")
    app.include_router(marketplace_router(settings, deps=MarketplaceDeps(
        service, WalletLogin(engine, tokens, settings, clock), tokens, engine)))
    app.include_router(router(settings, deps=InstancesDeps(service, SqlRunStore(engine), tokens, clock)))
    with TestClient(app) as client:
        yield Api(client, tokens, service, offer.id, clock)


def _create(api: Api, **extra) -> dict:  # type: ignore[no-untyped-def]
    return api.call("POST", "/api/v1/instances", "rent", Role.CUSTOMER, 201, json={
        "gpu_id": api.offer_id, "image_cid": CID, "max_duration_seconds": 600, **extra})


def test_gpus_and_instances_for_the_renter_alone(api: Api) -> None:
    gpus = api.call("GET", "/api/v1/gpus?gpu_model=L40S", "rent", Role.CUSTOMER)["items"]
    assert [g["id"] for g in gpus] == [api.offer_id] and gpus[0]["price_per_hour"] == str(3600 * ONE_TOKEN)
    api.call("GET", "/api/v1/gpus/nope", "rent", Role.CUSTOMER, 404)
    inst = _create(api, network="egress", command=["sh", "-c", "echo"], env={"SECRET": "xyz"})
    assert inst["state"] == "pending" and inst["network"] == "egress" and inst["env_keys"] == ["SECRET"]
    assert "xyz" not in str(api.call("GET", f"/api/v1/instances/{inst['id']}", "rent", Role.CUSTOMER))
    assert api.call("GET", f"/api/v1/instances/{inst['id']}", "prov", Role.PROVIDER)["id"] == inst["id"]
    body = api.call("GET", f"/api/v1/instances/{inst['id']}", "eve", Role.CUSTOMER, 404)
    assert body["error"] == "instance_not_found"
    assert api.call("GET", "/api/v1/instances", "eve", Role.CUSTOMER)["items"] == []
    assert [i["id"] for i in api.call("GET", "/api/v1/instances", "rent", Role.CUSTOMER)["items"]] == [inst["id"]]
    api.call("DELETE", f"/api/v1/instances/{inst['id']}", "eve", Role.CUSTOMER, 404)
    api.call("DELETE", f"/api/v1/instances/{inst['id']}", "prov", Role.PROVIDER, 403)
    stopped = api.call("DELETE", f"/api/v1/instances/{inst['id']}", "rent", Role.CUSTOMER)
    assert stopped["status"] == "CANCELLED" and stopped["settlement"]["refunded"] == str(600 * ONE_TOKEN)


@pytest.mark.parametrize("bad", [
    {"network": "host"}, {"env": {"HCP_JOB_ID": "x"}}, {"env": {"bad-name": "x"}},
    {"command": []}, {"max_duration_seconds": 0}, {"max_duration_seconds": True},
    {"image_cid": "QmNotACid"}, {"privileged": True},
])
def test_bad_instances_are_refused_at_the_edge(api: Api, bad: dict) -> None:  # type: ignore[type-arg]
    body = {"gpu_id": api.offer_id, "image_cid": CID, "max_duration_seconds": 600, **bad}
    r = api.client.post("/api/v1/instances", json=body, headers=api.h("rent", Role.CUSTOMER))
    assert r.status_code == 422 and r.json()["error"] in ("validation_error", "invalid_cid")


def test_the_agent_ports_round_trip_over_http(api: Api) -> None:
    inst = _create(api, command=["sh"], env={"K": "v"})
    job = inst["id"]
    token = api.tokens.issue("prov", Role.PROVIDER)
    client = HcpClient(token=token, http=api.client)
    transport = SyncTransport(api.client, token)
    market, runs = HttpMarketplace(client, transport), HttpRunStore(transport)
    assert [j.id for j in market.open_jobs()] == [job]
    assert market.offer(api.offer_id).vcpu == 4
    spec = runs.instance_spec(job)
    assert spec is not None and spec.network is NetworkMode.NONE and spec.command == ("sh",) and spec.env == {"K": "v"}
    assert market.accept(job).status.value == "ACCEPTED" and market.start(job).status.value == "RUNNING"
    lines = [LogLine(i, "stdout", (1_800_000_000 + i) * 10**9, f"l{i}") for i in range(3)]
    runs.append_logs(job, lines)
    runs.append_logs(job, lines)  # a resend stores nothing twice
    assert runs.log_resume(job, 1) == ResumePoint(3, 1_800_000_001, 2)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    runs.append_metrics(job, [MetricSample(0, at, 12.5, 1, 2, 3, {"source": "simulated", "power_w": 40.0})])
    assert runs.next_metric_seq(job) == 1
    assert runs.last_evidence_at(job) == datetime.fromtimestamp(1_800_000_002, UTC)
    record = RunRecord(job, "node-9", "prov", "gpu-0", Phase.RUNNING, at, container_id="c1")
    runs.save_run(record)
    assert runs.get_run(job) == record and runs.runs_of("node-9") == [record]
    api.clock.advance(30)
    assert market.complete(job, 20).final_cost == 20 * ONE_TOKEN
    with pytest.raises(JobTransitionError):
        market.complete(job, 20)
    runs.save_run(record.but(phase=Phase.SETTLED, reason=Reason.EXITED))
    assert runs.runs_of("node-9") == []
    # another provider reaches none of it
    other = SyncTransport(api.client, api.tokens.issue("prov-2", Role.PROVIDER))
    with pytest.raises(InstanceNotFoundError):
        HttpRunStore(other).append_logs(job, lines)
    assert HttpRunStore(other).get_run(job) is None
    assert market.job("nope") is None


@pytest.mark.parametrize("field,value", [
    ("updated_at", "2026-12-01T00:00:00"),               # no timezone
    ("updated_at", "0001-01-01T00:00:00+14:00"),         # outside what a datetime can hold in UTC
    ("container_started_at", "9999-12-31T23:59:59-14:00"),
    ("exit_code", "1"), ("exit_code", True), ("exit_code", 2**40),
])
def test_a_providers_bad_run_report_is_a_422(api: Api, field: str, value: object) -> None:
    job = _create(api)["id"]
    body = {"job_id": job, "agent_id": "node-9", "provider": "prov", "gpu_id": "gpu-0",
            "phase": "RUNNING", "updated_at": "2026-12-01T00:00:00+00:00", field: value}
    r = api.client.put(f"/api/v1/agent/runs/{job}", json=body, headers=api.h("prov", Role.PROVIDER))
    assert r.status_code == 422 and r.json()["error"] == "validation_error", r.text
    bad_sample = {"samples": [{"seq": 0, "at": value if field != "exit_code" else "2026-12-01T00:00:00",
                               "cpu_pct": 1.0, "mem_bytes": 1, "mem_limit_bytes": 2, "pids": 1, "gpu": {}}]}
    r = api.client.post(f"/api/v1/agent/runs/{job}/metrics", json=bad_sample,
                        headers=api.h("prov", Role.PROVIDER))
    assert r.status_code == 422 and r.json()["error"] == "validation_error", r.text


def test_socket_messages_are_bounded() -> None:
    lines = [{"seq": i, "stream": "stdout", "ts_ns": 1, "text": "x" * 1000} for i in range(100)]
    msgs = pack(lines, "lines", 8192)
    assert all(len(text.encode()) <= 8192 for text, _ in msgs)
    import json

    assert [i["seq"] for text, _ in msgs for i in json.loads(text)["items"]] == list(range(100))
    assert [c for _, c in msgs][-1] == 99
    (big,) = pack([{"seq": 7, "stream": "stdout", "ts_ns": 1, "text": "\x00" * 50_000}], "lines", 8192)
    assert len(big[0].encode()) <= 8192 and json.loads(big[0])["items"][0]["truncated"] is True
