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
from ray.serve.handle import DeploymentHandle

from hcp.api.usage import SqlUsageLedger
from hcp.auth.tokens import TokenService
from hcp.config import Settings
from hcp.logging_setup import configure_logging
from hcp.ratelimit import (
    LeasedRateLimiter,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    SqlRateLimiter,
)
from hcp.store import FleetRepository, connect, migrate
from hcp.workloads.repository import WorkloadRepository
from serve_apps.backends import ActorFleet, OptimizerEconomics, RouterWorkloads
from serve_apps.eventlog import StoreEventFeed, StoreSwitchLog
from serve_apps.factory import build_app, other_app_routers
from serve_apps.inference import EmbeddingsDeployment, ServeEmbedder
from serve_apps.services import ApiServices

log = logging.getLogger(__name__)

APP_NAME = "hcp"
# Serve's default of 5 in-flight requests per replica would queue a busy API behind itself;
# the handlers are async and wait on actors, so one replica carries many at once.
MAX_ONGOING = 512


def make_limiter(settings: Settings, engine: Any) -> RateLimiter:
    if settings.api_rate_limit_backend == "redis":
        import redis

        if not settings.api_redis_url:
            from hcp.errors import ConfigError

            raise ConfigError("HCP_API_RATE_LIMIT_BACKEND=redis needs HCP_API_REDIS_URL")
        return RedisRateLimiter(redis.Redis.from_url(settings.api_redis_url))
    if settings.api_rate_limit_backend == "memory":
        return MemoryRateLimiter()
    return SqlRateLimiter(engine)


def services_from_settings(settings: Settings, embeddings: DeploymentHandle | None) -> ApiServices:
    engine = connect(settings.resolved_database_url)
    migrate(engine)
    return ApiServices(
        workloads=RouterWorkloads(settings, WorkloadRepository(engine)),
        fleet=ActorFleet(settings),
        economics=OptimizerEconomics(settings),
        switch_log=StoreSwitchLog(FleetRepository(engine)),
        feed=StoreEventFeed(engine),
        usage=SqlUsageLedger(engine),
        # Each replica leases blocks of hits from the shared counters: no store round trip
        # per request, and the limit still holds across replicas (hcp/ratelimit/leased.py).
        limiter=LeasedRateLimiter(
            make_limiter(settings, engine),
            settings.api_rate_max_lease,
            blocking_io=settings.api_rate_limit_backend != "memory",
        ),
        embedder=ServeEmbedder(embeddings) if embeddings is not None else None,
        model_name=settings.inference_model,
    )


@serve.deployment(name="api", max_ongoing_requests=MAX_ONGOING, ray_actor_options={"num_cpus": 0})
@serve.ingress()
class ApiIngress:
    def __init__(
        self, settings: dict[str, Any], embeddings: DeploymentHandle | None = None
    ) -> None:
        s = Settings(**settings)
        configure_logging(s.log_level)
        services = services_from_settings(s, embeddings)
        self._app = build_app(services, TokenService.from_settings(s), s, other_app_routers(s))

    def __serve_build_asgi_app__(self) -> FastAPI:
        return self._app


def settings_args(settings: Settings) -> dict[str, Any]:
    """Settings as plain data for the replicas (they may run on other nodes, with other env)."""
    return settings.model_dump(mode="json")


def application(settings: Settings) -> Any:
    args = settings_args(settings)
    embeddings = EmbeddingsDeployment.options(max_ongoing_requests=MAX_ONGOING).bind(args)
    return ApiIngress.bind(args, embeddings)


def build(args: dict[str, Any] | None = None) -> Any:
    """Application builder for ``serve run``/``serve deploy``: ``args`` override HCP_ settings."""
    return application(Settings(**(args or {})))


def deploy(settings: Settings, *, start_http: bool = True) -> str:
    """Deploy (or update) the API on the connected cluster; returns its base URL."""
    if start_http:
        serve.start(http_options={"host": settings.api_host, "port": settings.api_port})
    serve.run(application(settings), name=APP_NAME, route_prefix="/", blocking=False)
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
    return f"http://{host}:{settings.api_port}"


def undeploy() -> None:
    serve.delete(APP_NAME)
