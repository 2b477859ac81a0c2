"""A full mining round: the `hcp miner` CLI against the notary app on a real HTTP server.

keygen → register (admin token) → run (fetch task, seeded search, local sandbox score, sign,
submit) → the notary re-runs the artifact and records a verified, credited claim. The notary
runs in wasm mode and, in a second round, in Docker isolation mode.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Self

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from hcp.auth.tokens import Role, TokenService
from hcp.clock import utcnow
from hcp.config import Settings
from hcp.notary import reference_task as rt
from hcp_cli.main import app
from serve_apps.notary.app import create_app

REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    def __init__(self, settings: Settings) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("notary server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(params=["wasm", "docker"])
def notary(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[_Server, str, dict, str]]:
    settings = Settings(home=tmp_path / "notary", database_url=f"sqlite:///{tmp_path}/n.db",
                        jwt_secret="e2-test-secret-" + "x" * 32,
                        notary_sandbox_mode=request.param)
    admin = TokenService.from_settings(settings).issue("admin-e2", Role.ADMIN)
    with _Server(settings) as srv:
        auth = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=srv.url, headers=auth, timeout=30) as http:
            up = http.post("/api/v1/admin/datasets",
                           files={"file": ("dataset.csv", rt.dataset_bytes(), "text/csv")})
            assert up.status_code == 201, up.text
            assert up.json()["dataset_hash"] == rt.DATASET_HASH
            task = http.post("/api/v1/admin/tasks", json={
                "task_id": "bc-logreg-v1", "metric": rt.METRIC, "performance_threshold": 0.95,
                "dataset_hash": rt.DATASET_HASH, "max_training_time_seconds": 60.0,
                "expires_at": (utcnow() + timedelta(days=1)).isoformat(), "reward": 250})
            assert task.status_code == 201, task.text
        yield srv, admin, auth, request.param


def _hcp(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HCP_HOME": str(home), "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-m", "hcp_cli.main", *args], check=False,
                          capture_output=True, text=True, env=full_env, cwd=REPO, timeout=300)


def _cli(args: list[str], home: Path, monkeypatch: pytest.MonkeyPatch, **env: str):
    """In-process CLI call (fast); the round itself runs as a real subprocess below."""
    monkeypatch.setenv("HCP_HOME", str(home))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return CliRunner().invoke(app, args)


def test_cli_completes_a_full_round(notary, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    srv, admin, auth, mode = notary
    home = tmp_path / "miner-home"
    monkeypatch.delenv("HCP_TOKEN", raising=False)
    keygen = _cli(["miner", "keygen", "--json"], home, monkeypatch)
    assert keygen.exit_code == 0, keygen.output
    ident = json.loads(keygen.stdout)

    # Registration needs the admin token: without it the CLI refuses before any request.
    refused = _cli(["miner", "register", "--notary", srv.url, "--stake", "1000", "--json"], home,
                   monkeypatch)
    assert refused.exit_code == 2
    assert json.loads(refused.stdout)["error"] == "notary_request_failed"
    reg = _cli(["miner", "register", "--notary", srv.url, "--stake", "1000", "--json"], home,
               monkeypatch, HCP_TOKEN=admin)
    assert reg.exit_code == 0, reg.output
    assert json.loads(reg.stdout)["public_key"] == ident["public_key"]

    started = int(time.time()) - 1
    # Docker's event times are whole seconds: containers that earlier tests of this process
    # started in the same seconds are not this round's.
    earlier = {e["id"] for e in _sandbox_starts(started)} if mode == "docker" else set()
    run = _hcp(["miner", "run", "--notary", srv.url, "--trials", "3", "--seed", "1", "--json"],
               home)  # a real process: the CLI as a miner runs it
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["verified"] is True and report["status_code"] == 202
    assert report["search"]["trials"] == 3 and report["search"]["engine"] == "optuna-tpe"
    resp = report["response"]
    assert resp["status"] == "verified" and resp["miner_id"] == ident["miner_id"]
    # The notary's re-execution reproduced the miner's local score exactly.
    assert resp["verified_score"] == report["local_score"] >= 0.95
    assert resp["artifact_hash"] == report["artifact_hash"]

    with httpx.Client(base_url=srv.url, headers=auth, timeout=30) as http:
        claim = http.get(f"/api/v1/claims/{resp['submission_id']}").json()
        assert claim["nonce"] == report["nonce"]
        miner = http.get(f"/api/v1/admin/miners/{ident['miner_id']}").json()
        assert miner["stake"] == 1000 and miner["balance"] > 0  # the verified claim was credited
    if mode == "docker":  # the notary's re-execution really ran in a sandbox container
        events = {e["id"] for e in _sandbox_starts(started)} - earlier
        assert len(events) == 1


def _sandbox_starts(since: int) -> list[dict]:
    """Sandbox containers this test process's notary started since ``since`` (Unix seconds)."""
    import docker

    return list(docker.from_env().events(
        since=since, until=int(time.time()) + 1, decode=True,
        filters={"type": "container", "event": "start",
                 "label": f"hcp.sandbox.pid={os.getpid()}"}))
