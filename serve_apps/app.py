"""The platform API on Ray Serve: a FastAPI ingress deployment plus the inference deployment.

``serve run serve_apps/serve_config.yaml`` (or ``serve deploy``) imports ``build``; ``hcp run``
calls ``deploy``. The ingress finds the router, fleet and optimizer actors by name in the
``HCP_RAY_NAMESPACE`` namespace, so it can start before them and survives their restarts.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from ray import serve

from actors.options import API_APP_NAME, api_ingress_options
from hcp.agent.store import SqlRunStore
from hcp.auth.tokens import TokenService
from hcp.config import Settings
from hcp.fleet.repository import FleetRepository
from hcp.inference.usage import SqlUsageLedger
from hcp.logging_setup import configure_for
from hcp.observability.history import build_history
from hcp.observability.sink import MetricsSink
from hcp.ratelimit import (
    LeasedRateLimiter,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    SqlRateLimiter,
)
from hcp.store import engine_for
from hcp.workloads.repository import WorkloadRepository
from serve_apps.backends import ActorFleet, OptimizerEconomics, RouterWorkloads
from serve_apps.eventlog import StoreEventFeed, StoreSwitchLog
from serve_apps.factory import build_app
from serve_apps.inference import GpuEmbedder
from serve_apps.services import ApiServices

log = logging.getLogger(__name__)

APP_NAME = API_APP_NAME


def make_limiter(settings: Settings, engine: Any) -> RateLimiter:
    if settings.api.rate_limit_backend == "redis":
        import redis

        if not settings.api.redis_url:
            from hcp.errors import ConfigError

            raise ConfigError("HCP_API_RATE_LIMIT_BACKEND=redis needs HCP_API_REDIS_URL")
        return RedisRateLimiter(redis.Redis.from_url(settings.api.redis_url))
    if settings.api.rate_limit_backend == "memory":
        return MemoryRateLimiter()
    return SqlRateLimiter(engine)


def services_from_settings(settings: Settings) -> ApiServices:
    engine = engine_for(settings.resolved_database_url)  # migrated by the platform's launch
    workloads = RouterWorkloads(settings, WorkloadRepository(engine))
    usage = SqlUsageLedger(engine)
    return ApiServices(
        workloads=workloads,
        fleet=ActorFleet(settings),
        economics=OptimizerEconomics(settings),
        switch_log=StoreSwitchLog(FleetRepository(engine)),
        feed=StoreEventFeed(engine),
        usage=usage,
        # Each replica leases blocks of hits from the shared counters: no store round trip
        # per request, and the limit still holds across replicas (hcp/ratelimit/leased.py).
        limiter=LeasedRateLimiter(
            make_limiter(settings, engine),
            settings.api.rate_max_lease,
            blocking_io=settings.api.rate_limit_backend != "memory",
        ),
        # One hop: this replica batches and calls the GPU actor itself.
        embedder=GpuEmbedder(settings, workloads, usage),
        model_name=settings.fleet.inference_model,
        run_logs=SqlRunStore(engine),  # a container workload's output, as the agent stored it
        history=build_history(settings, engine),
    )


def platform_routers(settings: Settings, metrics: MetricsSink) -> list[Any]:
    """The routers of the other areas as the platform mounts them: the notary's sandboxes on
    the runner actors; the marketplace's money through the escrow-ledger actor (the one owner
    of the books; found by name, on first use); the image node (Kubo RPC, trustless gateway
    and the image API) providers' agents pull from; the instances renters and agents use; the
    oracle's keys, heartbeats and standings (with the validators). The notary's stages and
    verdicts and the image node's collections are recorded in ``metrics``."""
    from functools import partial

    from actors.escrow import RemoteEscrow
    from actors.notary import NamedSandboxPool
    from hcp.clock import SystemClock
    from hcp.images.store.embedded import EmbeddedStore
    from hcp.marketplace.service import MarketplaceService
    from hcp.marketplace.wallet import WalletLogin
    from hcp.notary.service import build_service
    from hcp.observability.notary import SinkNotaryMetrics
    from serve_apps.images.routes import build_deps as images_deps
    from serve_apps.images.routes import router as images_router
    from serve_apps.instances.routes import InstancesDeps
    from serve_apps.instances.routes import router as instances_router
    from serve_apps.marketplace.routes import MarketplaceDeps
    from serve_apps.marketplace.routes import router as marketplace_router
    from serve_apps.notary.routes import router as notary_router

    engine = engine_for(settings.resolved_database_url)
    tokens = TokenService.from_settings(settings)
    notary = build_service(settings, engine, pool=NamedSandboxPool(settings),
                           metrics=SinkNotaryMetrics(metrics))
    market = MarketplaceService(engine, RemoteEscrow(settings), settings)
    deps = MarketplaceDeps(market, WalletLogin(engine, tokens, settings), tokens, engine)
    store = EmbeddedStore.from_settings(settings, engine)
    store.sink = metrics
    images = images_deps(settings, store=store, tokens=tokens)
    instances = InstancesDeps(market, SqlRunStore(engine), tokens, SystemClock())
    routers = [partial(notary_router, settings, service=notary, tokens=tokens),
               partial(marketplace_router, settings, deps=deps),
               partial(images_router, settings, deps=images),
               partial(instances_router, settings, deps=instances)]
    if settings.oracle.enabled:
        from serve_apps.oracle.routes import build_deps as oracle_deps
        from serve_apps.oracle.routes import router as oracle_router

        # Providers' agents register their keys and send heartbeats here; the validators
        # (actors, found by name on first use) answer.
        routers.append(partial(oracle_router, settings, deps=oracle_deps(settings)))
    return routers


@serve.deployment(**api_ingress_options())
@serve.ingress()
class ApiIngress:
    def __init__(self, settings: dict[str, Any]) -> None:
        s = Settings(**settings)
        configure_for(s)
        from actors.metrics_sink import RaySink, configure_breakers

        configure_breakers(s)  # before any client is built: Redis, the chain, the image store
        services = services_from_settings(s)

        # Ray's metrics agent on each node exports what the replicas record (file-sd: topology).
        sink = RaySink()
        self._app = build_app(services, TokenService.from_settings(s), s,
                              platform_routers(s, sink), metrics=sink)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return self._app


def settings_args(settings: Settings) -> dict[str, Any]:
    """Settings as plain data for the replicas (they may run on other nodes, with other env)."""
    return settings.model_dump(mode="json")


def application(settings: Settings) -> Any:
    return ApiIngress.bind(settings_args(settings))


def app_name(settings: Settings) -> str:
    prefix = settings.api.route_prefix.strip("/")
    return APP_NAME if not prefix else f"{APP_NAME}-{prefix.replace('/', '-')}"


def deploy(settings: Settings, *, start_http: bool = True) -> str:
    """Deploy (or update) the API on the connected cluster; returns its base URL."""
    if start_http:
        serve.start(http_options={"host": settings.api.host, "port": settings.api.port})
    serve.run(application(settings), name=app_name(settings),
              route_prefix=settings.api.route_prefix, blocking=False)
    host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::") else settings.api.host
    return f"http://{host}:{settings.api.port}"


def undeploy(settings: Settings) -> None:
    serve.delete(app_name(settings))
