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

from actors import topology
from actors.fleet import FleetHandles
from actors.options import gpu_actor_name
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
    parts: topology.Platform

    def headers(self, role: Role, subject: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(subject, role)}"}


_wait = wait_until


@pytest.fixture(scope="module")
def platform(ray_session, tmp_path_factory) -> Iterator[Platform]:  # type: ignore[no-untyped-def]
    from ray import serve

    home = tmp_path_factory.mktemp("api")
    port = _free_port()
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{home / 'hcp.db'}",
        ray_namespace="hcp-api-itest",
        jwt_secret="integration-secret-" + "y" * 32,
        checkpoint_seconds=0.5,
        router_tick_seconds=0.1,
        api_ws_heartbeat_seconds=1.0,
        api_live_poll_seconds=0.05,
        api_port=port,
        api_route_prefix=PREFIX,
        api_anonymous_rate_limit=50,
    )
    spec = parse_fleet_spec(SPEC, "api-itest")
    # The whole platform through the one topology (no optimizer: these tests switch by hand).
    parts = topology.launch(settings, spec, optimizer=False)
    base = f"http://127.0.0.1:{port}{PREFIX}"
    _wait(lambda: _up(base), timeout=120)
    try:
        yield Platform(settings, parts.fleet, base, TokenService(settings.auth.jwt_secret or ""), parts)
    finally:
        serve.delete(topology.api_app_name(settings))
        parts.api_url = None  # Serve itself is shared by the session's other tests
        topology.shutdown(parts)


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
    gpu = ray.get_actor(gpu_actor_name(device), namespace=platform.settings.ray.namespace)
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


def test_forwarded_for_from_an_untrusted_peer_does_not_pick_the_rate_key(
        platform: Platform) -> None:
    # From 127.0.0.1 with a new X-Forwarded-For each time: the proxy must not believe it (no
    # trusted proxies are configured), so every request counts against the same address.
    codes = [httpx.get(f"{platform.base}/api/v1/task", timeout=30,
                       headers={"X-Forwarded-For": f"198.51.100.{i % 250}"}).status_code
             for i in range(150)]
    # Believed, each address would have its own count and nothing would be refused; not
    # believed, at most the limit passes per window (two windows if the run straddles one).
    assert codes.count(429) >= 150 - 2 * 50, codes


def test_marketplace_money_goes_through_the_escrow_actor_and_survives_its_kill(
        platform: Platform) -> None:
    import threading

    from hcp.marketplace.escrow_backend import ONE_TOKEN

    admin = platform.headers(Role.ADMIN, "ops")
    prov, rent = platform.headers(Role.PROVIDER, "prov-1"), platform.headers(Role.CUSTOMER, "rent-1")
    mk = f"{platform.base}/api/v1/marketplace"
    assert httpx.post(f"{mk}/ledger/mint", headers=admin, timeout=60, json={
        "account": "rent-1", "amount": str(50 * ONE_TOKEN), "op_id": "fund-rent-1"}).status_code == 201
    offer = httpx.post(f"{mk}/offers", headers=prov, timeout=60, json={
        "gpu_model": "L4", "vcpu": 4, "memory_gb": 16, "storage_gb": 100,
        "price_per_hour": str(ONE_TOKEN), "location": "eu"}).json()
    codes: list[int] = []

    def create() -> None:
        for _ in range(12):
            r = httpx.post(f"{mk}/jobs", headers=rent, timeout=120, json={
                "offer_id": offer["id"], "image_cid": "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
                "estimated_seconds": 3600})
            codes.append(r.status_code)

    t = threading.Thread(target=create)
    t.start()
    _wait(lambda: len(codes) >= 3, timeout=60)
    ray.kill(platform.parts.escrow, no_restart=False)  # a crash mid-sequence: Ray restarts it
    t.join(timeout=300)
    assert codes and set(codes) <= {201, 503}, codes
    books = httpx.get(f"{mk}/ledger", headers=admin, timeout=60).json()
    jobs = httpx.get(f"{mk}/jobs", headers=admin, params={"limit": 500}, timeout=60).json()["items"]
    mine = [j for j in jobs if j["renter"] == "rent-1"]
    locked = sum(int(j["max_cost"]) for j in mine if not j["escrow_pending"])
    # Nothing lost, nothing counted twice: every acknowledged job's lock is escrowed exactly
    # once, and the books balance.
    assert codes.count(201) == len([j for j in mine if not j["escrow_pending"]])
    assert int(books["escrowed"]) == locked == codes.count(201) * ONE_TOKEN
    assert int(books["total_supply"]) == sum(int(v) for v in books["balances"].values()) + \
        int(books["escrowed"])
    assert int(books["balances"]["rent-1"]) == 50 * ONE_TOKEN - locked
