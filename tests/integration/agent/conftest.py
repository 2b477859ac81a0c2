"""The rental platform under uvicorn on PostgreSQL, a tiny real image built offline, and
provider agents on the real Docker Engine (in a thread, or as an ``hcp agent`` process)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest

from hcp.agent.agent import ProviderAgent
from hcp.agent.build import agent_images
from hcp.agent.docker_engine import DockerEngine
from hcp.agent.leases import LocalGpuLease
from hcp.agent.local_market import LocalMarketplace
from hcp.agent.messages import Slot
from hcp.agent.settings import AgentSettings
from hcp.agent.spec import LABEL_AGENT, Identity
from hcp.agent.store import SqlRunStore
from hcp.agent.tinyimage import build_tiny_image
from hcp.auth.tokens import Role, TokenService
from hcp.config import Settings
from hcp.marketplace.escrow_backend import ONE_TOKEN
from hcp.store.db import engine_for, migrate
from serve_apps.instances.app import PlatformDeps, build_deps, create_app
from tests.conftest import fresh_postgres_database
from tests.integration.images.node_server import serve

SECRET = "a" * 40
PROVIDER, RENTER = "prov-1", "alice"
PRICE = 3600 * ONE_TOKEN  # one token per second: every second of run time is visible in money


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return docker.from_env()


@pytest.fixture(scope="session")
def tiny_archive(docker_client: docker.DockerClient) -> Iterator[tuple[bytes, str]]:
    """A ``docker save`` archive of the tiny image and its image ID (removed from the Engine:
    every test's agent pulls it by CID and loads it)."""
    ref = f"hcp-agent-it:{uuid.uuid4().hex[:8]}"
    image_id = build_tiny_image(docker_client, ref)
    archive = b"".join(docker_client.images.get(ref).save(named=True))
    docker_client.images.remove(ref, force=True)
    yield archive, image_id
    _remove_image(docker_client, image_id)


def _remove_image(client: docker.DockerClient, image_id: str) -> None:
    try:
        client.images.remove(image_id, force=True)
    except docker.errors.ImageNotFound:
        pass


@dataclass
class Platform:
    url: str
    settings: Settings
    deps: PlatformDeps
    tokens: TokenService
    http: httpx.Client
    home: Path
    agents: list[Any] = field(default_factory=list)
    agent_ids: set[str] = field(default_factory=set)

    def token(self, who: str) -> str:
        role = {RENTER: Role.CUSTOMER, PROVIDER: Role.PROVIDER}.get(who, Role.ADMIN)
        return self.tokens.issue(who, role)

    def call(self, method: str, path: str, who: str, status: int = 200, **kw: Any) -> Any:
        r = self.http.request(method, path, headers={"Authorization": f"Bearer {self.token(who)}"}, **kw)
        assert r.status_code == status, r.text
        return r.json()

    def balance(self, account: str) -> int:
        return self.deps.marketplace.service.escrow.balance_of(account)

    def offer(self, vcpu: int = 1, memory_gb: int = 1, storage_gb: int = 1) -> str:
        return self.call("POST", "/api/v1/marketplace/offers", PROVIDER, 201, json={
            "gpu_model": "H100", "vcpu": vcpu, "memory_gb": memory_gb, "storage_gb": storage_gb,
            "price_per_hour": str(PRICE), "location": "lab"})["id"]

    def upload(self, archive: bytes) -> str:
        return self.call("POST", "/api/v1/images/upload", RENTER, 201,
                         files={"image": ("image.tar", archive, "application/x-tar")})["cid"]

    def instance(self, offer_id: str, cid: str, seconds: int, command: str, **kw: Any) -> dict[str, Any]:
        return self.call("POST", "/api/v1/instances", RENTER, 201, json={
            "gpu_id": offer_id, "image_cid": cid, "max_duration_seconds": seconds,
            "command": ["/bin/sh", "-c", command], **kw})

    def get(self, instance_id: str, who: str = RENTER) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/instances/{instance_id}", who)

    def agent(self, offer_id: str, agent_id: str | None = None,
              peers: list[str] | None = None, docker_url: str | None = None,
              gpu_id: str = "gpu-0", lease: Any = None) -> AgentThread:
        """The operator's in-process agent (marketplace service, SQL run store) in a thread;
        ``lease`` is the GPU's RENTED lease (a fleet GPU actor's hold; default: in memory)."""
        agent_id = agent_id or f"it-{uuid.uuid4().hex[:8]}"
        self.agent_ids.add(agent_id)
        home = self.home / agent_id
        s = self.settings.model_copy(update={"home": home})
        client = docker.DockerClient(base_url=docker_url, timeout=60) if docker_url else docker.from_env()
        dock = DockerEngine(client, s.agent)
        a = ProviderAgent(Identity(agent_id, PROVIDER), [Slot(offer_id, gpu_id, None, "H100")],
                          LocalMarketplace(self.deps.marketplace.service, PROVIDER), dock,
                          agent_images(s, dock, peers or [self.url]),
                          SqlRunStore(self.deps.marketplace.service.engine),
                          lease if lease is not None else LocalGpuLease(), s.agent)
        t = AgentThread(a)
        self.agents.append(t)
        return t.start()

    def daemon(self, offer_id: str, agent_id: str, once: bool = False,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A third-party provider's ``hcp agent run`` process against this platform's HTTP API."""
        self.agent_ids.add(agent_id)
        env = {**os.environ, **(env or {}), "HCP_HOME": str(self.home / agent_id), "HCP_AGENT__API_URL": self.url,
               "HCP_AGENT__TOKEN": self.token(PROVIDER), "HCP_AGENT__AGENT_ID": agent_id,
               "HCP_AGENT__POLL_SECONDS": "0.2", "HCP_AGENT__METRICS_INTERVAL_SECONDS": "0.5",
               "HCP_AGENT__STOP_GRACE_SECONDS": "1", "PYTHONPATH": os.getcwd(),
               "HCP_AGENT__SLOTS": f'[{{"offer_id": "{offer_id}", "gpu_id": "gpu-0", "gpu_model": "H100"}}]'}
        log = open(self.home / f"{agent_id}.log", "ab")  # noqa: SIM115 - the process owns it
        p = subprocess.Popen([sys.executable, "-m", "hcp_cli.main", "agent", "run",
                              *(["--once"] if once else [])], env=env, stdout=log, stderr=log)
        self.agents.append(p)
        return p


class AgentThread:
    def __init__(self, agent: ProviderAgent) -> None:
        self.agent = agent
        self.stop = threading.Event()
        self.thread = threading.Thread(target=agent.run, args=(self.stop,), daemon=True)

    def start(self) -> AgentThread:
        self.thread.start()
        return self

    def close(self) -> None:
        if self.stop.is_set():
            return
        self.stop.set()
        self.thread.join(30)
        self.agent.close(wait=True)  # no launch in flight creates a container after cleanup


# Short cadences for the platforms that run the oracle (a heartbeat a second), as
# HCP_ORACLE__* for the daemons and as settings for the validator actors.
ORACLE_ENV = {"HCP_ORACLE__HEARTBEAT_INTERVAL_SECONDS": "1", "HCP_ORACLE__HEARTBEAT_GRACE_SECONDS": "1",
              "HCP_ORACLE__HEARTBEAT_MAX_AGE_SECONDS": "5", "HCP_ORACLE__TICK_SECONDS": "0.2",
              "HCP_ORACLE__CHALLENGE_POLL_SECONDS": "0.3",
              "HCP_ORACLE__CHALLENGE_INTERVAL_SECONDS": "2",
              "HCP_ORACLE__SUSPECT_CHALLENGE_INTERVAL_SECONDS": "4",
              "HCP_ORACLE__VOTE_WINDOW_SECONDS": "10"}


def _oracle_settings() -> Any:
    from hcp.oracle.settings import OracleSettings

    return OracleSettings(**{k.removeprefix("HCP_ORACLE__").lower(): v for k, v in ORACLE_ENV.items()})


@pytest.fixture
def platform(request: pytest.FixtureRequest, tmp_path: Path, docker_client: docker.DockerClient,
             tiny_archive: tuple[bytes, str]) -> Iterator[Platform]:
    """With the ``oracle`` marker, the platform also runs the validator actors (on the test
    session's Ray) and serves ``/api/v1/oracle``."""
    _remove_image(docker_client, tiny_archive[1])  # every test pulls and loads it afresh
    oracle = request.node.get_closest_marker("oracle") is not None
    if oracle:
        request.getfixturevalue("ray_session")
    with fresh_postgres_database() as url:
        extra: dict[str, Any] = {"oracle": _oracle_settings(),
                                 "ray_namespace": f"hcp-agent-{uuid.uuid4().hex[:6]}"} if oracle else {}
        settings = Settings(home=tmp_path / "platform", database_url=url, jwt_secret=SECRET,
                            api_ws_heartbeat_seconds=0.5, api_rate_limit=100_000,
                            agent=AgentSettings(poll_seconds=0.2, metrics_interval_seconds=0.5,
                                                stop_grace_seconds=1, ws_poll_seconds=0.05),
                            **extra)
        migrate(engine_for(url))  # what the platform's launch does before any service starts
        deps = build_deps(settings)
        deps.marketplace.service.escrow.mint(RENTER, 10_000 * ONE_TOKEN, "fund-alice")
        app = create_app(settings, deps)
        actors: Any = None
        if oracle:
            # The coordinator's slashes go through the ledger actor, as in the platform.
            from actors.escrow import launch_escrow_ledger
            from actors.validator import launch_oracle
            from serve_apps.oracle.routes import build_deps as oracle_deps
            from serve_apps.oracle.routes import router as oracle_router

            actors = (launch_escrow_ledger(settings), *launch_oracle(settings))
            app.include_router(oracle_router(settings, deps=oracle_deps(settings)))
        with serve(app) as base, httpx.Client(base_url=base, timeout=30) as http:
            p = Platform(base, settings, deps, deps.instances.tokens, http, tmp_path)
            try:
                yield p
            finally:
                if actors is not None:
                    from actors.validator import stop_oracle

                    stop_oracle(actors[1], actors[2])
                    import ray

                    ray.kill(actors[0], no_restart=True)
                for a in p.agents:
                    if isinstance(a, AgentThread):
                        a.close()
                    elif a.poll() is None:
                        a.kill()
                        a.wait(10)
                for agent_id in p.agent_ids:
                    for c in docker_client.containers.list(
                            all=True, filters={"label": f"{LABEL_AGENT}={agent_id}"}):
                        c.remove(force=True)
                deps.marketplace.service.engine.dispose()
