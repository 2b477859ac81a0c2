"""The notary as a real Ray Serve application on a free port: a full miner round over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.unit.notary import wat_modules as wat
from tests.unit.notary.support import (
    Miner,
    admin_headers,
    free_port,
    make_artifact,
    notary_settings,
)


@pytest.fixture(scope="module")
def notary_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    import ray
    from ray import serve

    from serve_apps.notary.app import build_app

    temp_dir = tempfile.mkdtemp(prefix="hcp-e2e-notary-", dir="/tmp")
    # In one pytest run with tests/integration, their session may already hold Ray: reuse it.
    owns_ray = not ray.is_initialized()
    if owns_ray:
        ray.init(num_cpus=4, include_dashboard=False, namespace="hcp-e2e-notary",
                 _temp_dir=temp_dir, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.getcwd()}})
    port = free_port()
    home = tmp_path_factory.mktemp("notary-home")
    settings = notary_settings(home, ray_namespace="hcp-e2e-notary")
    try:
        if not owns_ray:
            # A Serve the integration tests left listens on their port, and serve.start would
            # keep it (a running Serve ignores new http_options): start it afresh.
            serve.shutdown()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(settings), name="notary", route_prefix="/")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240  # Serve's first start is slow on a loaded 2-core machine
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "notary did not come up"
            time.sleep(0.5)
        yield url, settings
    finally:
        serve.shutdown()
        if owns_ray:
            ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_full_round_through_serve(notary_url: tuple[str, object]) -> None:
    url, settings = notary_url
    hdr = admin_headers(settings)  # type: ignore[arg-type]
    miner = Miner()
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/api/v1/admin/miners", headers=hdr,
                   json={"miner_id": miner.miner_id, "public_key": miner.public_hex,
                         "stake": 1000})
        assert r.status_code == 201, r.text
        ds = c.post("/api/v1/admin/datasets", headers=hdr, files={"file": ("d.csv", b"a\n1\n")})
        assert ds.status_code == 201
        expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        t = c.post("/api/v1/admin/tasks", headers=hdr, json={
            "task_id": "e2e-task", "metric": "accuracy", "performance_threshold": 0.9,
            "dataset_hash": ds.json()["dataset_hash"], "max_training_time_seconds": 1,
            "expires_at": expires, "reward": 42})
        assert t.status_code == 201, t.text

        task = c.get("/api/v1/task").json()
        assert task["task_id"] == "e2e-task"
        assert c.get(f"/api/v1/datasets/{task['dataset_hash']}").content == b"a\n1\n"

        art = make_artifact(wat.score_wasm("0.9731"), {"lr": 0.05})
        data, files = miner.form(art, 0.9731, task_id="e2e-task")
        ok = c.post("/api/v1/submit", data=data, files=files)
        assert ok.status_code == 202, ok.text
        assert ok.json()["status"] == "verified" and ok.json()["reward"] == 42

        replay = c.post("/api/v1/submit", data=data, files=files)
        assert replay.status_code == 403 and replay.json()["error"] == "replay_detected"
        assert replay.json()["nonce"] == json.loads(data["payload"])["nonce"]

        slow = make_artifact(wat.infinite_loop_wasm())
        bad = c.post("/api/v1/submit", data=miner.form(art, 0.9731, task_id="e2e-task")[0],
                     files={"artifact": ("a.tar.gz", slow)})
        # The payload was signed for a different artifact: refused before the sandbox.
        assert bad.status_code == 400 and bad.json()["error"] == "hash_mismatch"
        d2, f2 = miner.form(slow, 0.99, task_id="e2e-task")
        timed_out = c.post("/api/v1/submit", data=d2, files=f2)
        assert timed_out.status_code == 422
        assert timed_out.json()["details"].startswith("Sandbox execution timed out")

        path = f"/api/v1/claims/{ok.json()['submission_id']}"
        public = c.get(path).json()  # anyone: the verdict, not what would let a replay be built
        assert public["status"] == "verified" and public["miner_id"] == miner.miner_id
        assert not {"artifact_uri", "signature", "nonce"} & set(public)
        claim = c.get(path, headers=hdr).json()  # the operator sees where the artifact is
        assert claim["status"] == "verified"
        assert Path(claim["artifact_uri"].removeprefix("file://")).name.endswith(".tar.gz")
