"""Batch work through `ray job submit` and Ray's job SDK, on a head started by `hcp cluster start`
on a machine where Redis holds 6379 and this suite's own Ray session runs beside it.

The backtest sweep and the embedding job run as Ray jobs; status, logs and stop work from both
the CLI and ``JobSubmissionClient``; a stopped job leaves no half output; `hcp cluster stop`
leaves no process of that head behind (and stops nothing else).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow.parquet as pq
import pytest

from hcp.batch.head import HeadRecord, head_processes

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.timeout(900)


def _cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / args[0]), *args[1:]], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _paragraphs(n: int) -> list[dict[str, str]]:
    """Real text: paragraphs of this repository's own documentation."""
    rows = []
    for f in sorted((REPO / "docs").glob("*.md")):
        for i, para in enumerate(f.read_text().split("\n\n")):
            text = " ".join(para.split())
            if 120 <= len(text) <= 1500 and not text.startswith(("|", "```", "#")):
                rows.append({"id": f"{f.stem}:{i}", "text": text})
    assert len(rows) >= n
    return rows[:n]


def _wait(client, job_id: str, timeout: float = 240):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        status = client.get_job_status(job_id)
        if status.is_terminal():
            return status
        assert time.monotonic() < deadline, f"job {job_id} still {status}"
        time.sleep(0.5)


def test_batch_jobs_on_a_head_of_their_own(tmp_path: Path) -> None:
    from ray.job_submission import JobStatus

    from actors.batch import job_client

    # Redis holds Ray's default GCS port on this machine: the head must not need it.
    with socket.create_connection(("127.0.0.1", 6379), timeout=2):
        pass
    # Another cluster holds Ray's default ports (dashboard, client server, dashboard agent):
    # listeners on each that is free stand in for it for the length of the test.
    squatters = []
    for port in (8265, 10001, 52365, 52366):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
            squatters.append(sock)
        except OSError:
            sock.close()  # held already, by something else: just as good
    home = tmp_path / "home"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "HCP_"))}
    base |= {"HCP_HOME": str(home), "PATH": f"{BIN}:{base.get('PATH', '')}"}
    started = _cli(base, "hcp", "cluster", "start", "--num-cpus", "2", timeout=240)
    assert started.returncode == 0, started.stderr[-3000:]
    env = dict(base)
    for line in started.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    rec = HeadRecord.load(home)
    assert rec is not None and env["RAY_ADDRESS"] == rec.dashboard_url
    assert 6379 not in rec.ports.values() and 8265 not in rec.ports.values()
    # A bystander that `ray stop` would kill (another cluster's raylet is named the same way):
    # stopping this head must leave it, the suite's own Ray session and Redis running.
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)",
                                  "/tmp/ray/session_other/raylet"])
    mine = {p.pid for p in head_processes(rec)}
    # Core daemons only: they live as long as their cluster (workers come and go by themselves).
    other_ray = [p for p in psutil.process_iter(["cmdline"]) if p.pid not in mine
                 and any(d in " ".join(p.info["cmdline"] or ()) for d in ("gcs_server", "raylet"))]
    assert bystander.pid in {p.pid for p in other_ray}
    try:
        # Token auth: without the token the job API refuses.
        anon = _cli({k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
                    | {"RAY_AUTH_MODE": "disabled"}, "ray", "job", "list", "--address", rec.dashboard_url)
        assert anon.returncode != 0 and "token" in (anon.stdout + anon.stderr).lower()

        # 1. The backtest sweep through the CLI: submit (waits), status, logs.
        sweep = _cli(env, "ray", "job", "submit", "--submission-id", "sweep-1", "--", "hcp", "backtest",
                     "--json", "--sweep", "--sweep-thresholds", "0,5", "--sweep-dwell-hours", "0,2")
        assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
        status = _cli(env, "ray", "job", "status", "sweep-1")
        assert "job 'sweep-1' succeeded" in (status.stdout + status.stderr).lower()
        logs = _cli(env, "ray", "job", "logs", "sweep-1").stdout
        report = json.loads(next(line for line in logs.splitlines() if line.startswith('{"')))
        points = {(p["threshold_pct"], p["dwell_hours"]) for p in report["sweep"]}
        assert points == {(0.0, 0.0), (0.0, 2.0), (5.0, 0.0), (5.0, 2.0)}
        assert all(0 < p["pct_of_optimum"] <= 100 for p in report["sweep"])

        # 2. The embedding job through the SDK: a data set in, Parquet out where it was asked.
        texts = _paragraphs(24)
        data = tmp_path / "docs.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in texts) + '{"id": "blank", "text": " "}\n'
                        + "not json\n")
        out = tmp_path / "out" / "docs.parquet"
        client = job_client(home)
        jid = client.submit_job(entrypoint=f"hcp batch embed --input {data} --output {out} --batch-size 8",
                                submission_id="embed-1")
        assert _wait(client, jid) == JobStatus.SUCCEEDED, client.get_job_logs(jid)[-3000:]
        summary = json.loads(next(line for line in client.get_job_logs(jid).splitlines()
                                  if line.startswith('{"output"')))
        assert summary["rows"] == 24 and summary["rejected"] == 2 and summary["output"] == str(out)
        table = pq.read_table(out)
        assert table.column("id").to_pylist() == [r["id"] for r in texts]
        vectors = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
        assert vectors.shape == (24, 384)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        sims = vectors @ vectors.T
        assert (sims.argmax(axis=1) == np.arange(24)).all()  # each text is its own nearest
        assert 0.05 < float(np.median(sims[np.triu_indices(24, 1)])) < 0.95  # not all the same
        rejects = [json.loads(x) for x in Path(f"{out}.rejects.jsonl").read_text().splitlines()]
        assert [r["line"] for r in rejects] == [25, 26]

        # The same command from a shell holding `hcp cluster start`'s exports runs on that head
        # and gives the same vectors.
        again = tmp_path / "out" / "again.parquet"
        shell = _cli(env, "hcp", "batch", "embed", "--input", str(data), "--output", str(again),
                     "--batch-size", "5")
        assert shell.returncode == 0, shell.stderr[-3000:]
        assert np.allclose(np.array(pq.read_table(again).column("embedding").to_pylist()), vectors,
                           atol=1e-5)

        # 3. Stop: a long job stopped from the SDK ends STOPPED and writes no half file.
        big = tmp_path / "big.jsonl"
        big.write_text("".join(json.dumps({"text": f"{r['text']} ({k})"}) + "\n"
                               for k in range(40) for r in texts))
        stopped_out = tmp_path / "out" / "big.parquet"
        long_id = client.submit_job(
            entrypoint=f"hcp batch embed --input {big} --output {stopped_out} --batch-size 4")
        deadline = time.monotonic() + 120
        while client.get_job_status(long_id) != JobStatus.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        time.sleep(5)
        assert client.stop_job(long_id)
        assert _wait(client, long_id, 60) == JobStatus.STOPPED
        assert not stopped_out.exists()
        listed = {j.submission_id: j.status for j in client.list_jobs()}
        assert listed["sweep-1"] == JobStatus.SUCCEEDED and listed["embed-1"] == JobStatus.SUCCEEDED
    finally:
        stop = _cli(base, "hcp", "cluster", "stop", timeout=120)
    assert stop.returncode == 0, stop.stderr
    left = [p for p in head_processes(rec) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], [p.cmdline() for p in left]
    assert not [p for p in psutil.process_iter(["cmdline"])
                if "ray.util.client.server" in " ".join(p.info["cmdline"] or ())
                and f"--address={rec.gcs_address}" in " ".join(p.info["cmdline"] or ())]
    try:
        assert bystander.poll() is None
        assert all(p.is_running() for p in other_ray), [p.pid for p in other_ray if not p.is_running()]
        with socket.create_connection(("127.0.0.1", 6379), timeout=2):
            pass
    finally:
        bystander.kill()
        bystander.wait()
        for sock in squatters:
            sock.close()
