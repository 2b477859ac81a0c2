"""Wiring a ``ProviderAgent`` from ``Settings``: in process over the marketplace service (the
operator's fleet; the lead's actor shell passes the GPU actor's lease), or over the platform's
HTTP API (a third-party provider's ``hcp agent`` daemon)."""

from __future__ import annotations

import re
import socket
from typing import Any

from hcp.agent.agent import ProviderAgent
from hcp.agent.docker_engine import DockerEngine
from hcp.agent.images import StoreImages, peer_fetcher
from hcp.agent.leases import LocalGpuLease
from hcp.agent.messages import Slot
from hcp.agent.ports import GpuLease
from hcp.agent.spec import Identity
from hcp.agent.store import SqlRunStore
from hcp.clock import SystemClock
from hcp.config import Settings
from hcp.errors import ConfigError
from hcp.images.cache import CACHE_PINNER, ImageCache
from hcp.images.catalog import ImageCatalog
from hcp.images.policy import UsageSource
from hcp.images.service import ImageService
from hcp.images.store.embedded import EmbeddedStore
from hcp.marketplace.service import MarketplaceService


def agent_id(settings: Settings) -> str:
    return settings.agent.agent_id or re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:64]


def slots(settings: Settings) -> list[Slot]:
    return [Slot(s.offer_id, s.gpu_id, s.device_index, s.gpu_model) for s in settings.agent.slots]


def agent_images(settings: Settings, docker: DockerEngine, peers: list[str]) -> StoreImages:
    """The agent's own block store: a node-local cache whose index is a SQLite file beside its
    blocks (HCP_HOME/images/<store_name>.db), not the platform's database, where the image
    node's own store keeps its index; missing blocks are fetched from ``peers``."""
    from hcp.store.db import connect, migrate

    name = settings.agent.store_name
    s = settings.model_copy(update={"images": settings.images.model_copy(update={"store_name": name})})
    engine = connect(f"sqlite:///{settings.home / 'images' / (name + '.db')}")
    migrate(engine)
    store = EmbeddedStore.from_settings(s, engine)
    fetcher = peer_fetcher(peers, settings.images.fetch_timeout_seconds,
                           settings.images.fetch_parallelism)
    return StoreImages(ImageService(store, ImageCatalog(engine)), docker.client, fetcher)


def agent_cache(settings: Settings, images: StoreImages, source: UsageSource) -> ImageCache:
    """The node's image cache policy over the agent's own store: every period it pins the
    marketplace's most-run images (fetching their blocks from the peers, each verified) and
    lets go of what it pinned that no job ran for a month. ``source`` is the job records'
    popularity (the marketplace's tables in process, the platform's catalog over HTTP)."""
    svc, fetcher = images.service, images.fetcher

    def pull(cid: str) -> None:
        svc.pull(cid, fetcher, pin=True, pinned_by=CACHE_PINNER)

    return ImageCache(svc.store, None, source, SystemClock(), settings.images, pull=pull)


def local_agent(settings: Settings, service: MarketplaceService, gpus: GpuLease,
                docker: DockerEngine | None = None, **kw: Any) -> ProviderAgent:
    """The operator's agent on one node, in the process that holds ``service``."""
    from hcp.agent.local_market import LocalMarketplace
    from hcp.images.usage import MarketplaceJobUsage

    docker = docker or DockerEngine.from_env(settings.agent)
    images = agent_images(settings, docker, settings.images.peers)
    kw.setdefault("cache", agent_cache(settings, images, MarketplaceJobUsage(service.engine)))
    return ProviderAgent(
        Identity(agent_id(settings), settings.agent.provider), slots(settings),
        LocalMarketplace(service, settings.agent.provider), docker, images,
        SqlRunStore(service.engine), gpus, settings.agent, **kw)


def workload_agent(settings: Settings, engine: Any, source: Any, gpus: list[tuple[str, str | None]],
                   identity: str, docker: DockerEngine | None = None, **kw: Any) -> ProviderAgent:
    """The operator's agent for platform workloads that carry a container
    (``hcp.agent.workloads``): the router's placements are its jobs, on the fleet's GPUs."""
    from hcp.agent.workloads import (
        PLATFORM,
        HeldByRouter,
        WorkloadMarketplace,
        WorkloadRuns,
        workload_slots,
    )

    docker = docker or DockerEngine.from_env(settings.agent)
    # Its own block store beside the rental agent's (one index per store directory).
    settings = settings.model_copy(update={"agent": settings.agent.model_copy(
        update={"store_name": f"{settings.agent.store_name}-wl"})})
    runs = WorkloadRuns(engine, source)
    wl_slots = workload_slots(gpus)

    market = WorkloadMarketplace(source, wl_slots, settings.agent, runs.get_run)
    return ProviderAgent(Identity(identity, PLATFORM), wl_slots, market, docker,
                         agent_images(settings, docker, settings.images.peers), runs,
                         HeldByRouter(), settings.agent, **kw)


def http_agent(settings: Settings, gpus: GpuLease | None = None,
               docker: DockerEngine | None = None, **kw: Any) -> ProviderAgent:
    """The standalone daemon: the platform at ``HCP_AGENT__API_URL`` with a provider token;
    images come from the platform's gateway (and ``HCP_IMAGES__PEERS``)."""
    from hcp.agent.http_ports import connect

    a = settings.agent
    if not a.api_url or a.token is None:
        raise ConfigError("the agent daemon needs HCP_AGENT__API_URL and HCP_AGENT__TOKEN")
    if not a.slots:
        raise ConfigError("the agent daemon needs at least one slot (HCP_AGENT__SLOTS or --slot)")
    market, runs, usage = connect(a.api_url, a.token.get_secret_value())
    docker = docker or DockerEngine.from_env(a)
    peers = list(dict.fromkeys([*settings.images.peers, a.api_url]))
    subject = _provider_subject(a.token.get_secret_value())
    images = agent_images(settings, docker, peers)
    kw.setdefault("cache", agent_cache(settings, images, usage))
    return ProviderAgent(Identity(agent_id(settings), subject), slots(settings), market, docker,
                         images, runs, gpus or LocalGpuLease(), a, **kw)


def oracle_link(settings: Settings, agent: ProviderAgent, port: Any) -> Any:
    """The agent's heartbeats and challenge answers (``hcp.agent.oracle``) as its provider,
    with the provider's key from ``HCP_HOME/oracle`` (created on first start)."""
    from hcp.agent.oracle import OracleLink
    from hcp.oracle.keyfile import load_or_create_signer

    provider = agent.identity.provider
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", provider)[:64]
    signer = load_or_create_signer(settings.home / "oracle" / f"provider-{name}.key", provider)
    images = agent.images
    return OracleLink(signer, port, images.service.store.get_block, settings.oracle, agent.clock,
                      agent.activity, agent.repair_images)


def http_oracle_link(settings: Settings, agent: ProviderAgent) -> Any:
    """The daemon's oracle link, over the platform's ``/api/v1/oracle``."""
    from hcp.agent.http_ports import oracle_port

    a = settings.agent
    if not a.api_url or a.token is None:
        raise ConfigError("the agent daemon needs HCP_AGENT__API_URL and HCP_AGENT__TOKEN")
    return oracle_link(settings, agent, oracle_port(a.api_url, a.token.get_secret_value()))


def _provider_subject(token: str) -> str:
    """The token's subject (read, not verified: the platform verifies every call)."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise ConfigError(f"HCP_AGENT__TOKEN is not a JWT: {type(exc).__name__}") from exc
    if claims.get("role") != "provider" or not claims.get("sub"):
        raise ConfigError("HCP_AGENT__TOKEN must be a provider token")
    return str(claims["sub"])
