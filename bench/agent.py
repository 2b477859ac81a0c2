"""Provider agent figures, each against a plain Docker baseline measured in the same run:

- ``first_log_cached_s``: instance created (HTTP) → its first log line on the WebSocket, the
  image already pulled and loaded; baseline: ``docker run`` → first line of ``docker logs -f``.
- ``first_log_cold_s``: the same with an empty agent store and the image not in the Engine
  (fetched by CID from the platform's gateway, every block verified, ``docker load``);
  baseline: ``docker load`` of the archive + ``docker run`` → first line.
- ``container_start_s``: the agent's create + start of a job's container (all its limits and
  lock-down) vs ``docker run -d`` of the same image through the same SDK.
- ``log_lines_per_s``: a container printing lines as fast as it can, read live through the
  agent (capture → store → WebSocket) vs ``docker logs -f``.

``python -m bench.agent [--trials N] [--lines N] [--database-url URL]``; SQLite by default.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import httpx
import uvicorn
from websockets.sync.client import connect

from bench.common import emit, note
from hcp.agent.agent import ProviderAgent
from hcp.agent.build import agent_images
from hcp.agent.docker_engine import DockerEngine
from hcp.agent.leases import LocalGpuLease
from hcp.agent.local_market import LocalMarketplace
from hcp.agent.messages import ContainerSpec, Slot
from hcp.agent.settings import AgentSettings
from hcp.agent.spec import Identity
from hcp.agent.store import SqlRunStore
from hcp.agent.tinyimage import build_tiny_image
from hcp.auth.tokens import Principal, Role
from hcp.config import Settings
from hcp.marketplace.escrow_backend import ONE_TOKEN
from hcp.marketplace.offers import OfferSpec
from serve_apps.instances.app import build_deps, create_app

BENCH = "agent"
PROVIDER, RENTER = "bench-provider", "bench-renter"
WAIT_CMD = "echo first; sleep 600"


class TimedEngine(DockerEngine):
    """The agent's Engine adapter, timing each container's create + start."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.starts: list[float] = []
        self._t0: dict[str, float] = {}

    def create(self, spec: ContainerSpec) -> str:
        t0 = time.perf_counter()
        cid = super().create(spec)
        self._t0[cid] = t0
        return cid

    def start(self, container_id: str) -> None:
        super().start(container_id)
        self.starts.append(time.perf_counter() - self._t0.pop(container_id))


@contextmanager
def _serve(app: Any) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(30)


class Bench:
    def __init__(self, home: Path, database_url: str | None) -> None:
        self.home = home
        self.settings = Settings(
            home=home / "platform", database_url=database_url, jwt_secret="b" * 40,
            api_rate_limit=10**7, api_ws_heartbeat_seconds=5.0,
            agent=AgentSettings(poll_seconds=0.05, ws_poll_seconds=0.02, metrics_interval_seconds=5,
                                stop_grace_seconds=0, log_batch_lines=2000, ws_max_items=2000))
        self.deps = build_deps(self.settings)
        svc = self.deps.marketplace.service
        svc.escrow.mint(RENTER, 10**9 * ONE_TOKEN, f"bench-{uuid.uuid4().hex}")
        self.offer = svc.register_offer(Principal(PROVIDER, Role.PROVIDER),
                                        OfferSpec("H100", 1, 1, 1, 3600 * ONE_TOKEN, "bench")).id
        self.client = docker.from_env()
        self.tokens = self.deps.instances.tokens
        self.renter = self.tokens.issue(RENTER, Role.CUSTOMER)
        self.agent: ProviderAgent | None = None
        self._stop: threading.Event | None = None

    def start_agent(self, url: str) -> TimedEngine:
        self.stop_agent()
        agent_id = f"bench-{uuid.uuid4().hex[:8]}"
        s = self.settings.model_copy(update={"home": self.home / agent_id})
        engine = TimedEngine(self.client, s.agent)
        svc = self.deps.marketplace.service
        self.agent = ProviderAgent(Identity(agent_id, PROVIDER), [Slot(self.offer, "gpu-0", None, "H100")],
                                   LocalMarketplace(svc, PROVIDER), engine,
                                   agent_images(s, engine, [url]), SqlRunStore(svc.engine),
                                   LocalGpuLease(), s.agent)
        self._stop = threading.Event()
        threading.Thread(target=self.agent.run, args=(self._stop,), daemon=True).start()
        return engine

    def stop_agent(self) -> None:
        if self.agent is not None and self._stop is not None:
            self._stop.set()
            time.sleep(0.2)
            self.agent.close()
            self.agent = None

    def create(self, http: httpx.Client, cid: str, command: str) -> str:
        r = http.post("/api/v1/instances", headers={"Authorization": f"Bearer {self.renter}"},
                      json={"gpu_id": self.offer, "image_cid": cid, "max_duration_seconds": 3600,
                            "command": ["/bin/sh", "-c", command]})
        r.raise_for_status()
        return str(r.json()["id"])

    def first_line(self, url: str, http: httpx.Client, cid: str) -> float:
        """Seconds from the instance's creation to its first line on the socket; then stops it."""
        t0 = time.perf_counter()
        job = self.create(http, cid, WAIT_CMD)
        ws_url = url.replace("http", "ws") + f"/api/v1/instances/{job}/logs?token={self.renter}"
        with connect(ws_url, open_timeout=30) as ws:
            while True:
                msg = json.loads(ws.recv(timeout=120))
                if msg.get("type") == "lines":
                    took = time.perf_counter() - t0
                    break
        self.stop(http, job)
        return took

    def stop(self, http: httpx.Client, job: str) -> None:
        http.delete(f"/api/v1/instances/{job}", headers={"Authorization": f"Bearer {self.renter}"})
        runs = self.deps.instances.runs
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run = runs.get_run(job)
            idle = self.agent is None or not self.agent.active()
            if run is not None and run.phase.value in ("SETTLED", "FAILED") and idle:
                return  # settled, and its container removed: the next trial starts clean
            time.sleep(0.05)
        raise RuntimeError(f"job {job} did not settle")

    def docker_first_line(self, image: str) -> float:
        t0 = time.perf_counter()
        c = self.client.containers.run(image, ["/bin/sh", "-c", WAIT_CMD], detach=True,
                                       network_mode="none")
        for _ in c.logs(stream=True, follow=True):
            took = time.perf_counter() - t0
            break
        c.remove(force=True)
        return took

    def remove_image(self, image_id: str) -> None:
        try:
            self.client.images.remove(image_id, force=True)
        except docker.errors.ImageNotFound:
            pass


def _p50(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--cold-trials", type=int, default=2)
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hcp-bench-agent-") as tmp:
        b = Bench(Path(tmp), args.database_url)
        ref = f"hcp-bench-agent:{uuid.uuid4().hex[:8]}"
        image_id = build_tiny_image(b.client, ref)
        archive = b"".join(b.client.images.get(ref).save(named=True))
        _img, info = b.deps.images.service.push_archive(__import__("io").BytesIO(archive), RENTER)
        cid = info.cid
        try:
            with _serve(create_app(b.settings, b.deps)) as url, httpx.Client(base_url=url, timeout=60) as http:
                run(b, url, http, cid, ref, image_id, archive, args)
        finally:
            b.stop_agent()
            b.remove_image(image_id)


def run(b: Bench, url: str, http: httpx.Client, cid: str, ref: str, image_id: str,
        archive: bytes, args: argparse.Namespace) -> None:
    # cold: an empty agent store, the image not in the Engine
    cold, cold_base = [], []
    for _ in range(args.cold_trials):
        b.remove_image(image_id)
        t0 = time.perf_counter()
        list(b.client.api.load_image(archive))
        b.client.images.get(image_id).tag(ref)
        cold_base.append(time.perf_counter() - t0 + b.docker_first_line(ref))
        b.remove_image(image_id)
        b.start_agent(url)
        cold.append(b.first_line(url, http, cid))
    note(f"cold first line: agent {cold}, docker load+run {cold_base}")
    emit(BENCH, "first_log_cold_s", _p50(cold), "s", _p50(cold_base), trials=len(cold))

    engine = b.start_agent(url)
    b.first_line(url, http, cid)  # warm the agent's store and the Engine's image
    b.client.images.get(image_id).tag(ref)
    engine.starts.clear()
    cached, base, runs = [], [], []
    for _ in range(args.trials):  # interleaved: both sides see the same machine load
        cached.append(b.first_line(url, http, cid))
        base.append(b.docker_first_line(ref))
        t0 = time.perf_counter()
        c = b.client.containers.run(ref, ["/bin/sh", "-c", WAIT_CMD], detach=True, network_mode="none")
        runs.append(time.perf_counter() - t0)
        c.remove(force=True)
    note(f"cached first line: agent {cached}, docker run {base}")
    note(f"container start: agent {engine.starts}, docker run -d {runs}")
    emit(BENCH, "first_log_cached_s", _p50(cached), "s", _p50(base), trials=len(cached), aim_s=2.0)
    emit(BENCH, "container_start_s", _p50(engine.starts), "s", _p50(runs), trials=len(engine.starts),
         aim_ratio=1.2)

    n = args.lines
    burst = f"i=0; while [ $i -lt {n} ]; do echo line $i; i=$((i+1)); done; sleep 600"
    job = b.create(http, cid, burst)
    got, first, last = 0, None, None
    ws_url = url.replace("http", "ws") + f"/api/v1/instances/{job}/logs?token={b.renter}"
    with connect(ws_url, open_timeout=30, max_size=8 << 20) as ws:
        while got < n:
            msg = json.loads(ws.recv(timeout=120))
            if msg.get("type") == "lines":
                first = first or time.perf_counter()
                got += len(msg["items"])
                last = time.perf_counter()
    b.stop(http, job)
    c = b.client.containers.run(ref, ["/bin/sh", "-c", burst], detach=True, network_mode="none")
    seen, d_first, d_last, buf = 0, None, None, b""
    for chunk in c.logs(stream=True, follow=True):
        d_first = d_first or time.perf_counter()
        buf += chunk
        seen += chunk.count(b"\n")
        d_last = time.perf_counter()
        if seen >= n:
            break
    c.remove(force=True)
    assert first is not None and last is not None and d_first is not None and d_last is not None
    ws_rate = n / max(last - first, 1e-6)
    docker_rate = n / max(d_last - d_first, 1e-6)
    emit(BENCH, "log_lines_per_s", ws_rate, "lines/s", docker_rate, lines=n)


if __name__ == "__main__":
    main()
