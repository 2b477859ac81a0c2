"""The live WebSocket: authentication, per-customer filtering, heartbeats, resuming by cursor."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from hcp.auth.tokens import Role
from tests.unit.api.support import Harness, make_harness


@pytest.fixture
def harness(tmp_path) -> Harness:  # type: ignore[no-untyped-def]
    return make_harness(tmp_path, api_ws_heartbeat_seconds=0.3, api_live_poll_seconds=0.02)


def _workload_event(h: Harness, owner: str, wid: str, state: str) -> None:
    h.repo.record_event(
        "workload", payload={"workload_id": wid, "owner": owner, "state": state, "device_id": None}
    )


def _next_event(ws) -> dict:  # type: ignore[no-untyped-def]
    for _ in range(50):
        msg = ws.receive_json()
        if msg["type"] == "event":
            return msg["event"]
        assert msg["type"] == "heartbeat"
    raise AssertionError("no event arrived")


def test_admin_sees_switches_and_every_workload(harness: Harness) -> None:
    token = harness.tokens.issue("root", Role.ADMIN)
    with TestClient(harness.app) as c, c.websocket_connect(f"/api/v1/live?token={token}") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "welcome" and hello["role"] == "admin"
        _workload_event(harness, "alice", "w1", "queued")
        c.post(
            "/api/v1/resources/devices/g0/mode",
            json={"mode": "INFERENCE"},
            headers=harness.headers(Role.ADMIN, "root"),
        )
        first, second = _next_event(ws), _next_event(ws)
        assert first["kind"] == "workload" and first["payload"]["workload_id"] == "w1"
        assert (second["kind"], second["device_id"], second["to_mode"]) == (
            "mode_change",
            "g0",
            "INFERENCE",
        )
        assert second["total_ms"] is not None and second["id"] > first["id"] > hello["cursor"]


def test_customer_sees_only_their_own_workloads(harness: Harness) -> None:
    token = harness.tokens.issue("alice", Role.CUSTOMER)
    with TestClient(harness.app) as c, c.websocket_connect("/api/v1/live") as ws:
        ws.send_json({"token": token})  # token as the first message
        assert ws.receive_json()["subject"] == "alice"
        _workload_event(harness, "bob", "w-bob", "running")
        c.post(
            "/api/v1/resources/devices/g1/mode",
            json={"mode": "IDLE"},
            headers=harness.headers(Role.ADMIN, "root"),
        )
        _workload_event(harness, "alice", "w-alice", "running")
        ev = _next_event(ws)
        assert ev["payload"] == {
            "workload_id": "w-alice",
            "owner": "alice",
            "state": "running",
            "device_id": None,
        }


def test_heartbeats_when_idle(harness: Harness) -> None:
    token = harness.tokens.issue("alice", Role.CUSTOMER)
    with TestClient(harness.app) as c, c.websocket_connect(f"/api/v1/live?token={token}") as ws:
        cursor = ws.receive_json()["cursor"]
        beats = [ws.receive_json() for _ in range(2)]
        assert [b["type"] for b in beats] == ["heartbeat", "heartbeat"]
        assert all(b["cursor"] == cursor and b["at"] for b in beats)


def test_resume_after_a_cursor_replays_missed_events(harness: Harness) -> None:
    for i in range(3):
        _workload_event(harness, "alice", f"w{i}", "queued")
    token = harness.tokens.issue("alice", Role.CUSTOMER)
    with (
        TestClient(harness.app) as c,
        c.websocket_connect(f"/api/v1/live?token={token}&after=1") as ws,
    ):
        assert ws.receive_json()["cursor"] == 1
        assert [_next_event(ws)["payload"]["workload_id"] for _ in range(2)] == ["w1", "w2"]


@pytest.mark.parametrize(
    ("role", "token_kind", "close_code", "error"),
    [
        (None, "none", 4401, "authentication_required"),
        (None, "garbage", 4401, "authentication_required"),
        (Role.PROVIDER, "valid", 4403, "forbidden"),
        (Role.MINER, "valid", 4403, "forbidden"),
        (Role.CUSTOMER, "bad-after", 4422, "validation_error"),
    ],
)
def test_refusals_send_an_error_then_close(
    harness: Harness, role, token_kind, close_code, error
) -> None:  # type: ignore[no-untyped-def]
    with TestClient(harness.app) as c:
        if token_kind == "bad-after":  # a superscript two is a digit to str.isdigit, not an id
            url = f"/api/v1/live?token={harness.tokens.issue('x', role)}&after=%C2%B2"
        elif token_kind == "valid":
            url = f"/api/v1/live?token={harness.tokens.issue('x', role)}"
        elif token_kind == "garbage":
            url = "/api/v1/live?token=garbage"
        else:
            url = "/api/v1/live"
        with c.websocket_connect(url) as ws:
            if token_kind == "none":
                ws.send_text("not json")
            assert ws.receive_json()["error"] == error
            with pytest.raises(WebSocketDisconnect) as exc:
                ws.receive_json()
            assert exc.value.code == close_code
