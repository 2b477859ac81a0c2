"""The platform API on real Ray Serve, over a real fleet, router and store.

Done-when scenario: a real-time workload submitted while every GPU mines gets a GPU switched
to INFERENCE and starts, and both the switch and the workload reach the WebSocket. Also: the
official ``openai`` client gets the GPU's embeddings back unchanged.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
import ray
from websockets.sync.client import connect as ws_connect

from actors.fleet import FleetHandles, launch_fleet, prepare_store, shutdown_fleet
from actors.options import gpu_actor_name
from actors.router import launch_router
from hcp.auth.tokens import Role, TokenService
from hcp.config import Settings
from hcp.fleet.spec import parse_fleet_spec
from tests.waiting import wait_until

APP = "hcp-api-itest"
PREFIX = f"/{APP}"
SPEC = {
    "fleet": "api-itest",
    "facilities": [
        {
            "name": "api-lab",
            "location": "test",
            "capacity_mw": 0.01,
            "pue": 1.2,
            "gpus": [{"id": "api-gpu-0", "model": "H100"}, {"id": "api-gpu-1", "model": "L40S"}],
            "asics": [{"id": "api-s21", "model": "S21", "count": 1}],
        }
    ],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Platform:
    settings: Settings
    handles: FleetHandles
    base: str  # http://127.0.0.1:PORT/hcp-api-itest
    tokens: TokenService

    def headers(self, role: Role, subject: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(subject, role)}"}


_wait = wait_until


@pytest.fixture(scope="module")
def platform(ray_session, tmp_path_factory) -> Iterator[Platform]:  # type: ignore[no-untyped-def]
    from ray import serve

    from serve_apps.app import application

    home = tmp_path_factory.mktemp("api")
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{home / 'hcp.db'}",
        ray_namespace="hcp-api-itest",
        jwt_secret="integration-secret-" + "y" * 32,
        checkpoint_seconds=0.5,
        router_tick_seconds=0.1,
        api_ws_heartbeat_seconds=1.0,
        api_live_poll_seconds=0.05,
    )
    spec = parse_fleet_spec(SPEC, "api-itest")
    prepare_store(spec, settings)
    handles = launch_fleet(spec, settings)
    ray.get([h.switch.remote("MINING", "itest start") for h in handles.gpus.values()])
    router = launch_router(handles, settings)
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(application(settings), name=APP, route_prefix=PREFIX, blocking=False)
    base = f"http://127.0.0.1:{port}{PREFIX}"
    _wait(lambda: _up(base), timeout=120)
    try:
        yield Platform(settings, handles, base, TokenService(settings.jwt_secret or ""))
    finally:
        serve.delete(APP)
        ray.kill(router, no_restart=True)
        shutdown_fleet(handles)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/v1/workloads", timeout=5).status_code == 401
    except httpx.HTTPError:
        return False


def _ws_messages(ws, until, timeout: float = 60.0) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    got: list[dict[str, Any]] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            msg = json.loads(ws.recv(timeout=max(0.1, end - time.monotonic())))
        except TimeoutError:
            break
        got.append(msg)
        if until(got):
            return got
    raise AssertionError(f"WebSocket did not deliver the expected events; got {got}")


def test_real_time_workload_preempts_mining_and_streams_on_the_websocket(
    platform: Platform,
) -> None:
    admin = platform.headers(Role.ADMIN, "ops")
    alice = platform.headers(Role.CUSTOMER, "alice")
    res = httpx.get(f"{platform.base}/api/v1/resources", headers=admin, timeout=30).json()
    assert {g["device_id"]: g["mode"] for g in res["gpus"]} == {
        "api-gpu-0": "MINING",
        "api-gpu-1": "MINING",
    }
    assert all(g["telemetry"]["power_w"] > 0 for g in res["gpus"])
    assert (
        httpx.get(f"{platform.base}/api/v1/resources", headers=alice, timeout=30).status_code == 403
    )

    ws_url = platform.base.replace("http://", "ws://") + "/api/v1/live"
    admin_token = admin["Authorization"].split()[1]
    alice_token = alice["Authorization"].split()[1]
    with ws_connect(f"{ws_url}?token={admin_token}") as ws_admin, ws_connect(ws_url) as ws_alice:
        ws_alice.send(json.dumps({"token": alice_token}))
        assert json.loads(ws_admin.recv(timeout=30))["type"] == "welcome"
        assert json.loads(ws_alice.recv(timeout=30))["subject"] == "alice"

        r = httpx.post(
            f"{platform.base}/api/v1/workloads",
            headers=alice,
            timeout=30,
            json={
                "type": "inference",
                "priority": 9,
                "duration_seconds": 600,
                "name": "real-time chat",
            },
        )
        assert r.status_code == 201, r.text
        wid = r.json()["id"]

        def running() -> dict[str, Any] | None:
            w = httpx.get(
                f"{platform.base}/api/v1/workloads/{wid}", headers=alice, timeout=30
            ).json()
            return w if w["state"] == "running" else None

        w = _wait(running)
        assert w["preempted_mining"] is True and w["device_id"] in platform.handles.gpus
        gpu = platform.handles.gpus[w["device_id"]]
        assert ray.get(gpu.status.remote()).mode == "INFERENCE"

        def admin_saw_both(msgs: list[dict[str, Any]]) -> bool:
            evs = [m["event"] for m in msgs if m["type"] == "event"]
            switched = any(
                e["kind"] == "mode_change"
                and e["device_id"] == w["device_id"]
                and e["to_mode"] == "INFERENCE"
                and e["total_ms"] is not None
                for e in evs
            )
            started = any(
                e["kind"] == "workload"
                and e["payload"]["workload_id"] == wid
                and e["payload"]["state"] == "running"
                for e in evs
            )
            return switched and started

        _ws_messages(ws_admin, admin_saw_both)
        alice_msgs = _ws_messages(
            ws_alice,
            lambda ms: any(
                m["type"] == "event" and m["event"]["payload"]["state"] == "running" for m in ms
            ),
        )
        alice_events = [m["event"] for m in alice_msgs if m["type"] == "event"]
        assert all(
            e["kind"] == "workload" and e["payload"]["owner"] == "alice" for e in alice_events
        )

    switches = httpx.get(
        f"{platform.base}/api/v1/switches",
        params={"device": w["device_id"]},
        headers=admin,
        timeout=30,
    ).json()["items"]
    assert switches[0]["to_mode"] == "INFERENCE" and switches[0]["total_ms"] > 0

    done = httpx.delete(f"{platform.base}/api/v1/workloads/{wid}", headers=alice, timeout=30)
    assert done.status_code == 200 and done.json()["state"] == "cancelled"
    again = httpx.delete(f"{platform.base}/api/v1/workloads/{wid}", headers=alice, timeout=30)
    assert again.status_code == 409 and again.json()["error"] == "invalid_workload_transition"


def test_openai_client_gets_the_models_embeddings_unchanged(platform: Platform) -> None:
    from openai import OpenAI

    texts = ["The GPU switched from mining to inference.", "Bananas are rich in potassium."]
    token = platform.tokens.issue("bob", Role.CUSTOMER)
    client = OpenAI(base_url=f"{platform.base}/v1", api_key=token, max_retries=0, timeout=60)
    got_b64 = client.embeddings.create(
        model="all-MiniLM-L6-v2", input=texts
    )  # client default: base64
    got_float = client.embeddings.create(
        model="all-MiniLM-L6-v2", input=texts[0], encoding_format="float"
    )
    assert [d.index for d in got_b64.data] == [0, 1] and got_b64.model == "all-MiniLM-L6-v2"
    assert (
        got_b64.usage.prompt_tokens > 2 * 2
        and got_b64.usage.total_tokens == got_b64.usage.prompt_tokens
    )

    # The model's own output, from the GPU actor now serving inference.
    device = next(
        d
        for d, h in platform.handles.gpus.items()
        if ray.get(h.status.remote()).mode == "INFERENCE"
    )
    gpu = ray.get_actor(gpu_actor_name(device), namespace=platform.settings.ray_namespace)
    own = np.asarray(ray.get(gpu.embed.remote(texts)), dtype=np.float32)
    own_first = np.asarray(ray.get(gpu.embed.remote(texts[:1])), dtype=np.float32)
    assert np.array_equal(np.asarray([d.embedding for d in got_b64.data], dtype=np.float32), own)
    assert np.array_equal(np.asarray(got_float.data[0].embedding, dtype=np.float32), own_first[0])

    bill = httpx.get(
        f"{platform.base}/api/v1/billing",
        headers=platform.headers(Role.CUSTOMER, "bob"),
        timeout=30,
    ).json()
    assert bill["inference"]["requests"] == 2
    assert (
        bill["inference"]["input_tokens"]
        == got_b64.usage.prompt_tokens + got_float.usage.prompt_tokens
    )

    with pytest.raises(Exception) as exc:  # the client raises its typed error for a 401
        OpenAI(base_url=f"{platform.base}/v1", api_key="wrong", max_retries=0).embeddings.create(
            model="all-MiniLM-L6-v2", input="x"
        )
    assert getattr(exc.value, "status_code", None) == 401
