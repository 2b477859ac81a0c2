"""``/api/v1/oracle`` with the daemon's own ``HttpOracle`` on the other end: a third-party
provider registers its key, its heartbeats reach every validator, it answers challenges, its
warnings arrive; another provider's messages, replays and malformed bodies are typed refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from hcp.agent.http_ports import HttpOracle
from hcp.agent.oracle import OracleLink
from hcp.auth.tokens import Role, TokenService
from hcp.client.transport import SyncTransport
from hcp.config import Settings
from hcp.images.patterns import pattern_bytes
from hcp.images.store.embedded import EmbeddedStore
from hcp.oracle.challenge import ImageTarget
from hcp.oracle.disputes import EvidenceCollector
from hcp.oracle.findings import Outcome
from hcp.oracle.heartbeat import Heartbeat
from hcp.oracle.signing import Signer
from serve_apps.edge import new_app
from serve_apps.oracle.routes import OracleDeps, router
from tests.unit.images.conftest import ManualClock
from tests.unit.oracle.test_validators import Cluster, ClusterPort, make_cluster

SECRET = "o" * 40


@pytest.fixture
def api(engine: Engine, clock: ManualClock, tmp_path: Path) -> Iterator[tuple[TestClient, TokenService, Cluster]]:
    c = make_cluster(engine, clock)
    tokens = TokenService(SECRET, clock=clock)
    settings = Settings(home=tmp_path / "home", jwt_secret=SECRET, api_rate_limit=100_000)
    app = new_app(settings, title="oracle", version="1")
    deps = OracleDeps(tokens, c.identities, ClusterPort(c), c.repo, EvidenceCollector(engine, c.repo),
                      c.settings.quorum)
    app.include_router(router(settings, deps=deps))
    with TestClient(app) as client:
        yield client, tokens, c


def _auth(tokens: TokenService, who: str, role: Role = Role.PROVIDER) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue(who, role)}"}


def test_the_daemon_heartbeats_answers_and_is_warned_over_http(
        api: tuple[TestClient, TokenService, Cluster], store: EmbeddedStore) -> None:
    client, tokens, c = api
    signer = Signer.from_seed("prov-h", b"\x07" * 32)
    port = HttpOracle(SyncTransport(client, tokens.issue("prov-h", Role.PROVIDER)))
    link = OracleLink(signer, port, store.get_block, c.settings, c.clock)
    rep = link.step()
    assert rep.errors == [] and rep.accepted_by == 3
    r = store.add([pattern_bytes("http", 600_000)])
    c.targets["prov-h"] = [ImageTarget(r.cid, "", r.size)]
    c.force_round("prov-h")
    c.clock.advance(seconds=1)
    rep = link.step(force=True)
    assert len(rep.answered) == 3 and rep.refused == [] and rep.errors == []
    store.unpin(r.cid)
    store.gc()
    c.force_round("prov-h")
    c.clock.advance(seconds=1)
    link.step(force=True)  # answers without the bytes: a confirmed failure, a warning
    c.clock.advance(seconds=1)
    rep = link.step(force=True)
    assert [w.outcome for w in rep.warnings] == [Outcome.DATA_FRAUD]
    body = client.get("/api/v1/oracle/providers/prov-h", headers=_auth(tokens, "renter", Role.CUSTOMER))
    assert body.status_code == 200
    assert body.json()["state"] == "suspect" and body.json()["offerable"] is False


def test_refusals_are_typed(api: tuple[TestClient, TokenService, Cluster]) -> None:
    client, tokens, c = api
    mine = Signer.from_seed("prov-r", b"\x08" * 32)
    h = _auth(tokens, "prov-r")
    assert client.post("/api/v1/oracle/keys", headers=h,
                       json={"public_key": mine.public_key.hex()}).status_code == 201
    hb = Heartbeat.signed(mine, 1, c.clock.now())
    assert client.post("/api/v1/oracle/heartbeats", headers=h, json=hb.to_wire()).json() == {
        "accepted_by": 3}
    cases = [
        # another provider's heartbeat, with this provider's token
        ("/api/v1/oracle/heartbeats", h,
         Heartbeat.signed(Signer.from_seed("prov-x", b"\x09" * 32), 2, c.clock.now()).to_wire(),
         403, "forbidden"),
        ("/api/v1/oracle/heartbeats", h, hb.to_wire(), 403, "heartbeat_replayed"),
        ("/api/v1/oracle/heartbeats", h, {**hb.to_wire(), "seq": 5}, 403, "oracle_bad_signature"),
        ("/api/v1/oracle/heartbeats", h, {"provider": "prov-r"}, 422, None),
        ("/api/v1/oracle/heartbeats", _auth(tokens, "renter", Role.CUSTOMER), hb.to_wire(), 403,
         None),
        ("/api/v1/oracle/keys", h, {"public_key": "zz"}, 422, None),
        ("/api/v1/oracle/answers", h, {"validator": "val-0", "answer": {"challenge_id": 1}}, 422,
         None),
    ]
    for path, headers, body, status, code in cases:
        r = client.post(path, headers=headers, json=body)
        assert r.status_code == status, (path, body, r.text)
        if code is not None:
            assert r.json()["error"] == code
    assert client.get("/api/v1/oracle/providers/nobody", headers=h).status_code == 404
    assert client.get("/api/v1/oracle/challenges").status_code == 401
