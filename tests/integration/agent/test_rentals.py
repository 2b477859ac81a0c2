"""Rentals end to end on the real Docker Engine and PostgreSQL, through HTTP: a provider offers
a GPU, a renter uploads a tiny real image and creates an instance, escrow locks, the agent
pulls the image by CID (every block verified), runs it locked down, its logs stream on the
WebSocket, it exits, and the money splits exactly 98/2 with the rest refunded. The same with
the renter stopping early and with a tampered image."""

from __future__ import annotations

from typing import Any

import docker
import httpx
from fastapi import FastAPI, Request, Response

from hcp.auth.tokens import Role
from hcp.marketplace.escrow_backend import ONE_TOKEN, split_payment
from tests.integration.agent.conftest import PROVIDER, RENTER, Platform
from tests.integration.agent.wsclient import items, read_until_end, ws_url
from tests.integration.images.node_server import serve
from tests.waiting import wait_until

PROBE = ("while read k v; do case $k in Seccomp:|NoNewPrivs:|CapEff:) echo $k $v;; esac; "
         "done < /proc/self/status")
PLATFORM_ACCOUNT = "platform"


def _container(client: docker.DockerClient, job_id: str) -> Any:
    found = client.containers.list(all=True, filters={"label": f"hcp.job_id={job_id}"})
    return found[0] if found else None


def _settled(p: Platform, job_id: str) -> dict[str, Any] | None:
    inst = p.get(job_id)
    c = inst["container"]
    return inst if c is not None and c["phase"] in ("SETTLED", "FAILED") else None


def test_an_instance_runs_end_to_end(platform: Platform, tiny_archive: tuple[bytes, str],
                                     docker_client: docker.DockerClient) -> None:
    p = platform
    offer = p.offer(vcpu=1, memory_gb=1, storage_gb=1)
    cid = p.upload(tiny_archive[0])
    gpus = p.call("GET", "/api/v1/gpus", RENTER)["items"]
    assert [g["id"] for g in gpus] == [offer] and p.call("GET", f"/api/v1/gpus/{offer}", RENTER)["gpu_model"] == "H100"
    renter0, provider0, platform0 = p.balance(RENTER), p.balance(PROVIDER), p.balance(PLATFORM_ACCOUNT)
    p.agent(offer)
    inst = p.instance(offer, cid, 600, PROBE + "; i=0; while [ $i -lt 5 ]; do echo line $i; "
                      "i=$((i+1)); sleep 0.4; done; echo done >&2")
    job = inst["id"]
    assert inst["state"] == "pending" and p.balance(RENTER) == renter0 - 600 * ONE_TOKEN  # escrow locked

    seen_running: list[str] = []

    def on_message(msg: dict[str, Any]) -> None:
        if msg.get("type") == "lines" and not seen_running:
            seen_running.append(p.get(job)["state"])  # the first lines arrive while it runs

    messages = read_until_end(ws_url(p.url, f"/api/v1/instances/{job}/logs", p.token(RENTER)),
                              on_message=on_message)
    assert messages[0]["type"] == "welcome" and messages[-1]["type"] == "end"
    assert seen_running == ["running"]
    lines = items(messages)
    assert [ln["seq"] for ln in lines] == list(range(len(lines)))
    assert [ln["text"] for ln in lines] == ["CapEff: 0000000000000000", "NoNewPrivs: 1", "Seccomp: 2",
                                            *[f"line {i}" for i in range(5)], "done"]
    assert lines[-1]["stream"] == "stderr" and lines[0]["stream"] == "stdout"

    done = wait_until(lambda: _settled(p, job), timeout=30)
    c = done["container"]
    assert done["state"] == "completed" and c["exit_code"] == 0 and c["simulated_gpu"] is True
    assert c["reason"] == "exited" and c["usage_seconds"] >= 1
    cost = int(done["final_cost"])
    assert cost in (c["usage_seconds"] * ONE_TOKEN, (c["usage_seconds"] - 1) * ONE_TOKEN)
    to_provider, to_platform = split_payment(cost)
    assert to_platform == cost * 2 // 100 and to_provider == cost - to_platform
    assert p.balance(PROVIDER) - provider0 == to_provider
    assert p.balance(PLATFORM_ACCOUNT) - platform0 == to_platform
    assert p.balance(RENTER) == renter0 - cost  # the rest of the escrow came back
    rep = p.call("GET", f"/api/v1/marketplace/reputation/{PROVIDER}", RENTER)
    assert rep["completed_jobs"] == 1 and rep["total_jobs"] == 1
    assert _container(docker_client, job) is None  # cleaned up

    samples = items(read_until_end(ws_url(p.url, f"/api/v1/instances/{job}/metrics", p.token(RENTER))))
    assert samples and all(s["gpu"]["source"] == "simulated" and s["gpu"]["simulated"] for s in samples)
    assert all(s["mem_limit_bytes"] == 1 << 30 for s in samples)
    # the provider sees it too; another renter does not
    assert p.get(job, PROVIDER)["id"] == job
    other = p.tokens.issue("bob", Role.CUSTOMER)
    r = p.http.get(f"/api/v1/instances/{job}", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 404 and r.json()["error"] == "instance_not_found"


def test_the_container_is_locked_down(platform: Platform, tiny_archive: tuple[bytes, str],
                                      docker_client: docker.DockerClient) -> None:
    p = platform
    offer = p.offer(vcpu=1, memory_gb=1, storage_gb=1)
    cid = p.upload(tiny_archive[0])
    p.agent(offer)
    job = p.instance(offer, cid, 600, "echo up; sleep 300", network="egress")["id"]
    c = wait_until(lambda: _container(docker_client, job), timeout=60)
    wait_until(lambda: p.get(job)["state"] == "running", timeout=30)
    hc = docker_client.api.inspect_container(c.id)["HostConfig"]
    assert hc["ReadonlyRootfs"] is True and hc["Privileged"] is False and hc["CapDrop"] == ["ALL"]
    assert hc["SecurityOpt"] == ["no-new-privileges:true"]  # seccomp: the Engine's default
    assert hc["Memory"] == hc["MemorySwap"] == 1 << 30 and hc["NanoCpus"] == 10**9
    assert hc["PidsLimit"] == 1024 and hc["RestartPolicy"]["Name"] == "no"
    assert hc["NetworkMode"] == "hcp-egress" and "/tmp" in hc["Tmpfs"]
    net = docker_client.networks.get("hcp-egress").attrs
    assert net["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    labels = docker_client.api.inspect_container(c.id)["Config"]["Labels"]
    assert labels["hcp.job_id"] == job and labels["hcp.provider"] == PROVIDER
    assert labels["hcp.simulated_gpu"] == "1"
    env = docker_client.api.inspect_container(c.id)["Config"]["Env"]
    assert "HCP_SIMULATED_GPU=1" in env
    p.call("DELETE", f"/api/v1/instances/{job}", RENTER)
    wait_until(lambda: _container(docker_client, job) is None, timeout=30)


def test_the_renter_stops_early_and_pays_the_time_used(platform: Platform, tiny_archive: tuple[bytes, str],
                                                       docker_client: docker.DockerClient) -> None:
    p = platform
    offer = p.offer()
    cid = p.upload(tiny_archive[0])
    renter0, provider0 = p.balance(RENTER), p.balance(PROVIDER)
    p.agent(offer)
    job = p.instance(offer, cid, 3600, "while true; do echo tick; sleep 0.3; done")["id"]
    wait_until(lambda: p.get(job)["state"] == "running", timeout=60)
    wait_until(lambda: len(p.deps.instances.runs.read_logs(job, -1, 10)) >= 8, timeout=30)  # >2 s
    stopped = p.call("DELETE", f"/api/v1/instances/{job}", RENTER)
    assert stopped["status"] == "COMPLETED"
    cost = int(stopped["final_cost"])
    assert 0 < cost < 3600 * ONE_TOKEN
    settlement = stopped["settlement"]
    assert int(settlement["refunded"]) == 3600 * ONE_TOKEN - cost
    assert int(settlement["to_platform"]) == cost * 2 // 100
    done = wait_until(lambda: _settled(p, job), timeout=30)
    assert done["state"] == "stopped" and done["container"]["reason"] == "stopped_by_renter"
    assert _container(docker_client, job) is None
    assert p.balance(RENTER) == renter0 - cost
    assert p.balance(PROVIDER) - provider0 == cost - cost * 2 // 100
    p.call("DELETE", f"/api/v1/instances/{job}", RENTER, 409)  # once
    # the logs stay readable after the container is gone
    lines = items(read_until_end(ws_url(p.url, f"/api/v1/instances/{job}/logs", p.token(RENTER))))
    assert len(lines) >= 3 and {ln["text"] for ln in lines} == {"tick"}


def _evil_gateway(real: str) -> FastAPI:
    """A peer that serves every large block with one byte flipped."""
    app = FastAPI()
    client = httpx.Client(base_url=real, timeout=30)

    @app.get("/ipfs/{cid}")
    def block(cid: str, request: Request) -> Response:
        r = client.get(f"/ipfs/{cid}", params=dict(request.query_params),
                       headers={"Accept": request.headers.get("accept", "")})
        body = bytearray(r.content)
        if len(body) > 100_000:
            body[len(body) // 2] ^= 0xFF
        return Response(bytes(body), r.status_code, media_type=r.headers.get("content-type"))

    return app


def test_a_tampered_image_is_refused_and_refunded(platform: Platform, tiny_archive: tuple[bytes, str],
                                                  docker_client: docker.DockerClient) -> None:
    p = platform
    offer = p.offer()
    cid = p.upload(tiny_archive[0])
    renter0, provider0 = p.balance(RENTER), p.balance(PROVIDER)
    with serve(_evil_gateway(p.url)) as evil:
        p.agent(offer, peers=[evil])
        job = p.instance(offer, cid, 600, "echo never")["id"]
        done = wait_until(lambda: _settled(p, job), timeout=60)
    assert done["state"] == "failed" and done["status"] == "CANCELLED"
    c = done["container"]
    assert c["phase"] == "FAILED" and c["reason"] == "image_tampered"
    assert "do not match the image's CID" in c["detail"] and cid in c["detail"]
    assert c["container_id"] is None and _container(docker_client, job) is None
    assert p.balance(RENTER) == renter0 and p.balance(PROVIDER) == provider0  # all refunded
    assert items(read_until_end(ws_url(p.url, f"/api/v1/instances/{job}/logs", p.token(RENTER)))) == []
