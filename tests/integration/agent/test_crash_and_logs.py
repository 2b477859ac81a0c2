"""The third-party ``hcp agent`` daemon (over the platform's HTTP API) SIGKILLed mid-run: the
next one adopts the same container, keeps its log without a gap or a repeat, completes the
job once and leaves nothing behind. And the log socket resuming from a cursor after a
reconnect, with heartbeats while the container is quiet and its history after it is gone."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime
from typing import Any

import docker
from websockets.sync.client import connect

from hcp.agent.docker_engine import parse_engine_time
from hcp.auth.tokens import Role
from tests.integration.agent.conftest import PROVIDER, RENTER, Platform
from tests.integration.agent.wsclient import items, read_until_end, ws_url
from tests.waiting import wait_until


def _containers(client: docker.DockerClient, job_id: str) -> list[Any]:
    return client.containers.list(all=True, filters={"label": f"hcp.job_id={job_id}"})


def _settled(p: Platform, job_id: str) -> dict[str, Any] | None:
    inst = p.get(job_id)
    c = inst["container"]
    return inst if c is not None and c["phase"] in ("SETTLED", "FAILED") else None


def test_a_sigkilled_agent_is_replaced_without_double_payment(platform: Platform,
                                                              tiny_archive: tuple[bytes, str],
                                                              docker_client: docker.DockerClient) -> None:
    p = platform
    offer = p.offer()
    cid = p.upload(tiny_archive[0])
    renter0, provider0 = p.balance(RENTER), p.balance(PROVIDER)
    first = p.daemon(offer, "third-party-1")
    job = p.instance(offer, cid, 600,
                     "i=0; while [ $i -lt 30 ]; do echo tick $i; i=$((i+1)); sleep 0.25; done")["id"]
    wait_until(lambda: len(p.deps.instances.runs.read_logs(job, -1, 100)) >= 4, timeout=90)
    (container,) = _containers(docker_client, job)
    started = container.attrs["State"]["StartedAt"]
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert container.reload() is None and container.status == "running"  # it outlives its agent
    stored_at_kill = len(p.deps.instances.runs.read_logs(job, -1, 100))

    second = p.daemon(offer, "third-party-1")
    done = wait_until(lambda: _settled(p, job), timeout=90)
    c = done["container"]
    assert done["state"] == "completed" and c["exit_code"] == 0
    assert c["container_id"] == container.id  # adopted, never restarted
    lines = p.deps.instances.runs.read_logs(job, -1, 1000)
    assert [ln.seq for ln in lines] == list(range(30)) and stored_at_kill < 30
    assert [ln.text for ln in lines] == [f"tick {i}" for i in range(30)]
    cost = int(done["final_cost"])
    assert cost > 0
    assert p.balance(PROVIDER) - provider0 == cost - cost * 2 // 100  # paid exactly once
    assert p.balance(RENTER) == renter0 - cost
    assert _containers(docker_client, job) == []
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0

    assert datetime.fromisoformat(c["container_started_at"]) == parse_engine_time(started)

    # A third start finds nothing to do and pays nothing again.
    once = p.daemon(offer, "third-party-1", once=True)
    assert once.wait(60) == 0
    out = (p.home / "third-party-1.log").read_text().strip().splitlines()[-1]
    assert json.loads(out) == {"accepted": [], "adopted": [], "settled": [], "failed": []}
    assert p.balance(PROVIDER) - provider0 == cost - cost * 2 // 100
    assert p.call("GET", f"/api/v1/marketplace/reputation/{PROVIDER}", RENTER)["completed_jobs"] == 1


def test_the_log_socket_resumes_from_its_cursor(platform: Platform, tiny_archive: tuple[bytes, str]) -> None:
    p = platform
    offer = p.offer()
    cid = p.upload(tiny_archive[0])
    p.agent(offer)
    job = p.instance(offer, cid, 600, "i=0; while [ $i -lt 20 ]; do echo line $i; i=$((i+1)); "
                     "if [ $i -eq 10 ]; then sleep 2; fi; sleep 0.05; done")["id"]
    path = f"/api/v1/instances/{job}/logs"
    token = p.token(RENTER)
    first = read_until_end(ws_url(p.url, path, token), stop_after=5)  # then the network drops
    got = items(first)
    cursor = got[-1]["seq"]
    rest = read_until_end(ws_url(p.url, path, token, cursor=cursor))
    assert rest[0] == {"type": "welcome", "instance": job, "cursor": cursor, "state": rest[0]["state"]}
    got += items(rest)
    assert [ln["text"] for ln in got] == [f"line {i}" for i in range(20)]  # none lost, none twice
    assert [ln["seq"] for ln in got] == list(range(20))
    assert any(m["type"] == "heartbeat" for m in first + rest)  # the quiet 2 s
    assert rest[-1]["type"] == "end" and rest[-1]["cursor"] == 19

    wait_until(lambda: _settled(p, job), timeout=30)
    history = read_until_end(ws_url(p.url, path, token))  # after the container is gone
    assert [ln["text"] for ln in items(history)] == [f"line {i}" for i in range(20)]
    assert read_until_end(ws_url(p.url, path, token, cursor=19))[-1] == {
        "type": "end", "cursor": 19, "state": "completed"}

    # the token in a first message works too; a stranger and a bad cursor are refused
    with connect(p.url.replace("http", "ws") + path, open_timeout=10) as ws:
        ws.send(json.dumps({"token": token}))
        assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
    stranger = p.tokens.issue("bob", Role.CUSTOMER)
    refused = read_until_end(ws_url(p.url, path, stranger))
    assert refused == [{"error": "instance_not_found", "detail": f"no instance {job!r}",
                        "instance_id": job}]
    assert read_until_end(ws_url(p.url, path, token) + "&cursor=x")[0]["error"] == "validation_error"


def test_a_daemon_without_a_token_refuses_to_start(platform: Platform) -> None:
    out = subprocess.run([sys.executable, "-m", "hcp_cli.main", "agent", "run", "--once"],
                         capture_output=True, text=True, timeout=60, check=False,
                         env={"PATH": "/usr/bin:/bin", "HCP_HOME": str(platform.home / "x"),
                              "PYTHONPATH": "."})
    assert out.returncode == 2 and "HCP_AGENT__API_URL and HCP_AGENT__TOKEN" in out.stdout
