"""`hcp run` deploys the HTTP API; `hcp token` issues tokens it accepts (as a user runs them)."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.running import HCP, stop, token, wait_for_fleet


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e.update(
        HCP_HOME=str(tmp_path / "home"),
        HCP_RAY_TEMP_DIR=tempfile.mkdtemp(prefix="hcp-e2e-", dir="/tmp"),
        HCP_API_PORT=str(_free_port()),
        HCP_JWT_SECRET="e2e-api-secret-" + "q" * 32,
        HCP_CHECKPOINT_SECONDS="1",
        HCP_OPS__PROMETHEUS_PORT=str(_free_port()),  # none runs there: history from the store
        PYTHONUNBUFFERED="1",
    )
    for k in ("HCP_DATABASE_URL", "HCP_RAY_ADDRESS", "HCP_RAY_NAMESPACE"):
        e.pop(k, None)
    return e


def _gpu_actor_pids() -> list[int]:
    """Processes of the GPU actors (Ray names an actor's process after its class)."""
    out = subprocess.run(["pgrep", "-f", "ray::GpuActor"], capture_output=True, text=True)
    return sorted(int(p) for p in out.stdout.split())


def test_token_refuses_an_unknown_role(env: dict[str, str]) -> None:
    r = subprocess.run(
        [HCP, "token", "--role", "root", "--subject", "x"],
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "root" in r.stdout + r.stderr


def test_run_serves_the_api_with_tokens_from_hcp_token(env: dict[str, str]) -> None:
    # No secret in the environment: `hcp run` creates HCP_HOME/jwt.secret, `hcp token` reads it.
    env.pop("HCP_JWT_SECRET")
    log_path = Path(env["HCP_HOME"]).parent / "run.log"
    base = f"http://127.0.0.1:{env['HCP_API_PORT']}"
    with open(log_path, "w") as log:
        run = subprocess.Popen(
            [HCP, "run", "--no-live", "--duration", "400", "--refresh", "5"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_for_fleet(run, log_path, timeout=300)
        assert f"API {base}" in log_path.read_text()

        # State is private to its owner; Ray's unauthenticated metrics exporter is on loopback.
        home = Path(env["HCP_HOME"])
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        for name in ("hcp.db", "jwt.secret"):
            assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
        [port_file] = Path(env["HCP_RAY_TEMP_DIR"]).glob("session_latest/metrics_export_port_*")
        port = int(port_file.read_text())
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                                   text=True).stdout.split()
        assert listening and listening[3] == f"127.0.0.1:{port}", listening
        # ... and it is where the platform tells Prometheus to scrape (file-sd, hcp ops prometheus).
        targets = json.loads((home / "ops/prometheus/targets/ray.json").read_text())
        assert targets[0]["targets"] == [f"127.0.0.1:{port}"], targets

        admin = {"Authorization": f"Bearer {token(env, 'admin', 'ops')}"}
        alice = {"Authorization": f"Bearer {token(env, 'customer', 'alice')}"}
        assert httpx.get(f"{base}/api/v1/resources", timeout=30).status_code == 401
        res = httpx.get(f"{base}/api/v1/resources", headers=admin, timeout=30)
        assert res.status_code == 200, res.text
        assert {g["device_id"] for g in res.json()["gpus"]} == {"lab-gpu-0", "lab-gpu-1"}
        assert httpx.get(f"{base}/api/v1/resources", headers=alice, timeout=30).status_code == 403
        # `hcp run` also starts the optimizer (issue 3): its economics are served here.
        prof = httpx.get(f"{base}/api/v1/profitability", headers=admin, timeout=30)
        assert prof.status_code == 200, prof.text

        w = httpx.post(
            f"{base}/api/v1/workloads",
            headers=alice,
            timeout=30,
            json={"type": "batch", "priority": 2, "duration_seconds": 30},
        )
        assert w.status_code == 201, w.text
        mine = httpx.get(f"{base}/api/v1/workloads", headers=alice, timeout=30).json()["items"]
        assert [x["id"] for x in mine] == [w.json()["id"]]
        assert (
            httpx.get(f"{base}/openapi.json", timeout=30).json()["info"]["title"]
            == "hcp platform API"
        )
        # The rental half is served by the same ingress: the image node providers' agents pull
        # from (Kubo RPC for an operator, the trustless gateway for anyone) and the instances.
        prov = {"Authorization": f"Bearer {token(env, 'provider', 'prov')}"}
        assert httpx.post(f"{base}/api/v0/version", headers=prov, timeout=30).json()["Version"]
        assert httpx.get(f"{base}/api/v1/images", headers=alice, timeout=30).status_code == 200
        gpus = httpx.get(f"{base}/api/v1/gpus", headers=alice, timeout=30)
        assert gpus.status_code == 200 and "items" in gpus.json(), gpus.text
        assert httpx.get(f"{base}/api/v1/agent/jobs", headers=prov, timeout=30).status_code == 200

        # SIGKILL of one GPU actor: the platform stays up, the API shows it as unavailable
        # while Ray restarts it, then it is back in its committed mode.
        victim = _gpu_actor_pids()[0]
        os.kill(victim, signal.SIGKILL)
        seen_down = False
        deadline = time.monotonic() + 120
        while True:
            assert run.poll() is None, log_path.read_text()[-3000:]
            r = httpx.get(f"{base}/api/v1/resources", headers=admin, timeout=30)
            assert r.status_code == 200, r.text  # never a refused connection or a 5xx
            states = [g["availability"] for g in r.json()["gpus"]]
            seen_down = seen_down or "unavailable" in states
            if seen_down and states == ["up", "up"] and victim not in _gpu_actor_pids():
                break
            assert time.monotonic() < deadline, (states, log_path.read_text()[-3000:])
            time.sleep(0.5)
        time.sleep(6)  # a few refreshes of `hcp run`'s own view after the restart
        assert run.poll() is None, log_path.read_text()[-3000:]

        # The API's requests reach Ray's metrics agent by route template (what Prometheus scrapes).
        assert httpx.get(f"{base}/api/v1/resources", headers=admin, timeout=30).headers["x-request-id"]
        deadline = time.monotonic() + 90
        wanted = ('route="/api/v1/resources"', 'device="lab-gpu-0"')  # the API's and the GPU actors'
        while not all(w in (exported := httpx.get(f"http://127.0.0.1:{port}/metrics",
                                                  timeout=30).text) for w in wanted):
            assert time.monotonic() < deadline, [x for x in exported.splitlines()
                                                 if "http_" in x or "hcp_device" in x][:5]
            time.sleep(2)
        assert "http_requests_total" in exported and "hcp_device_power_watts" in exported

        # The metrics history from the store (no Prometheus listens on the port it is told):
        # the GPU actors write each minute that ends, and the facility's steps show them.
        deadline = time.monotonic() + 120
        while True:
            h = httpx.get(f"{base}/api/v1/metrics/facilities/local-lab", headers=admin, timeout=30)
            assert h.status_code == 200, h.text
            filled = [p for p in h.json()["points"] if p["devices"]]
            if filled:
                break
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(3)
        assert h.json()["source"] == "store" and len(h.json()["points"]) == 60
        assert filled[-1]["power_w"] > 0 and filled[-1]["temperature_c_max"] > 0
        gpu = httpx.get(f"{base}/api/v1/metrics/devices/lab-gpu-1", headers=admin,
                        params={"window": "30d"}, timeout=30)
        assert gpu.status_code == 200 and gpu.json()["step_seconds"] == 3600, gpu.text
    finally:
        rc = stop(run)
    assert rc == 0, log_path.read_text()[-3000:]
