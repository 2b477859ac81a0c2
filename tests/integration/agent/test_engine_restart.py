"""A restart of Docker Engine under a running rental, on a private ``dockerd`` of this test's
own (so the host's Engine, which other work shares, is never restarted).

Without live restore the Engine stops the container with itself: the agent, once the Engine
is back, settles the job with the container's real run time, keeps every log line and leaves
neither a container nor the GPU behind. With ``--live-restore`` the container outlives the
Engine: the agent re-attaches to it and the job runs on to its end."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from hcp.agent.messages import Reason
from tests.integration.agent.conftest import PROVIDER, RENTER, Platform
from tests.waiting import wait_until


@dataclass
class PrivateEngine:
    root: Path
    live_restore: bool
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    def start(self) -> None:
        args = ["dockerd", "--host", self.url, "--data-root", str(self.root / "data"),
                "--exec-root", str(self.root / "x"), "--pidfile", str(self.root / "docker.pid"),
                "--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                "--shutdown-timeout", "1"]
        if self.live_restore:
            args.append("--live-restore")
        log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 - the daemon's for its life
        self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        wait_until(self._up, timeout=60, every=0.2)

    def _up(self) -> bool:
        try:
            return bool(docker.DockerClient(base_url=self.url, timeout=5).ping())
        except docker.errors.DockerException:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)

    def restart(self) -> None:
        self.stop()
        time.sleep(1.0)  # its containerd lets go of the exec root
        self.start()

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=60)


@pytest.fixture(params=[False, True], ids=["stopped-with-the-engine", "live-restore"])
def engine(request: pytest.FixtureRequest) -> Iterator[PrivateEngine]:
    root = Path(tempfile.mkdtemp(prefix="hcp-de-", dir="/tmp"))  # a short socket path
    e = PrivateEngine(root, live_restore=request.param)
    e.start()
    try:
        yield e
    finally:
        try:
            c = e.client()
            for ct in c.containers.list(all=True):
                ct.remove(force=True)
            c.images.prune(filters={"dangling": False})
        except docker.errors.DockerException as exc:  # the test's own failure is the one to report
            print(f"cleanup of the private Engine: {exc}")
        e.stop()
        subprocess.run(["umount", "-R", str(root / "data")], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_an_engine_restart_loses_no_job_and_leaks_nothing(platform: Platform, engine: PrivateEngine,
                                                          tiny_archive: tuple[bytes, str]) -> None:
    p = platform
    offer = p.offer()
    cid = p.upload(tiny_archive[0])
    provider0 = p.balance(PROVIDER)
    agent = p.agent(offer, docker_url=engine.url)
    # Long enough to outlast the Engine's 10 s stop grace (sh as PID 1 ignores SIGTERM) when
    # it is stopped with the Engine; 40 ticks (10 s) when it lives through the restart.
    ticks = 40 if engine.live_restore else 400
    job = p.instance(offer, cid, 600, f"i=0; while [ $i -lt {ticks} ]; do echo tick $i; "
                     "i=$((i+1)); sleep 0.25; done")["id"]
    wait_until(lambda: len(p.deps.instances.runs.read_logs(job, -1, 100)) >= 4, timeout=90)
    (container,) = engine.client().containers.list(filters={"label": f"hcp.job_id={job}"})

    engine.restart()

    done = wait_until(lambda: _settled(p, job), timeout=120)
    c = done["container"]
    lines = p.deps.instances.runs.read_logs(job, -1, 1000)
    texts = [ln.text for ln in lines]
    assert [ln.seq for ln in lines] == list(range(len(lines)))  # no gap, no repeat
    assert texts == [f"tick {i}" for i in range(len(texts))]
    if engine.live_restore:  # it ran on through the restart, to its own end
        assert c["reason"] == "exited" and c["exit_code"] == 0 and len(texts) == 40
    else:  # stopped with the Engine: paid up to then, every line it wrote kept
        assert c["reason"] == Reason.EXITED.value and c["exit_code"] == 137 and 4 <= len(texts) < ticks
    assert c["container_id"] == container.id
    cost = int(done["final_cost"])
    assert cost in (c["usage_seconds"] * 10**18, max(0, c["usage_seconds"] - 1) * 10**18)
    assert p.balance(PROVIDER) - provider0 == cost - cost * 2 // 100
    assert engine.client().containers.list(all=True, filters={"label": f"hcp.job_id={job}"}) == []
    assert agent.agent.gpus.holder("gpu-0") is None
    assert p.call("GET", f"/api/v1/marketplace/reputation/{PROVIDER}", RENTER)["completed_jobs"] == 1


def _settled(p: Platform, job_id: str) -> dict[str, Any] | None:
    inst = p.get(job_id)
    c = inst["container"]
    return inst if c is not None and c["phase"] in ("SETTLED", "FAILED") else None

