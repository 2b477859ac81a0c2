"""Builds the platform API's FastAPI app from its services (no Ray here: tests build it too)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from functools import partial

from fastapi import APIRouter, FastAPI  # noqa: F401 (FastAPI: the return type)

from hcp.auth.tokens import TokenService
from hcp.config import Settings
from hcp.observability.sink import MetricsSink
from serve_apps.deps import client_dependency
from serve_apps.edge import new_app
from serve_apps.http_metrics import HttpMetricsMiddleware
from serve_apps.live import LiveHub, live_router
from serve_apps.openai_api import openai_router
from serve_apps.ratelimit import RequestLimits
from serve_apps.routes_fleet import fleet_router
from serve_apps.routes_metrics import metrics_router
from serve_apps.routes_workloads import workloads_router
from serve_apps.services import ApiServices

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"
# Routers of other areas, mounted when their module is present: (module, factory function).
OTHER_APPS = (("serve_apps.notary.routes", "router"), ("serve_apps.marketplace.routes", "router"),
              ("serve_apps.images.routes", "router"), ("serve_apps.instances.routes", "router"),
              ("serve_apps.oracle.routes", "router"))


def build_app(
    services: ApiServices,
    tokens: TokenService,
    settings: Settings,
    extra_routers: Iterable[Callable[[RequestLimits], APIRouter]] = (),
    metrics: MetricsSink | None = None,
) -> FastAPI:
    app = new_app(
        settings,
        title="hcp platform API",
        version=API_VERSION,
        description="Workloads, fleet resources, switch history, economics, billing, live updates "
        "and OpenAI-compatible embeddings. Every route needs a JWT bearer token "
        '(`hcp token --role R --subject S`); refusals are `{"error", "detail"}` '
        '(OpenAI\'s `{"error": {"message", "type", "param", "code"}}` under `/v1/`).',
    )
    limits = request_limits(services, settings)
    client = client_dependency(tokens, limits)
    app.include_router(workloads_router(services, client))
    app.include_router(fleet_router(services, client, settings))
    app.include_router(metrics_router(services.history, client))
    app.include_router(openai_router(services, client))
    hub = LiveHub(services.feed, settings.api.live_poll_seconds)
    app.include_router(
        live_router(
            services,
            tokens,
            hub,
            settings.api.ws_heartbeat_seconds,
            limits,
        )
    )
    for make_router in extra_routers:
        try:
            app.include_router(make_router(limits))
        except Exception:  # another area's failure must not take the platform API down
            log.exception("could not mount %s", getattr(make_router, "func", make_router))
    if metrics is not None:
        # Every route of every mounted area, by route template (bounded series).
        app.add_middleware(HttpMetricsMiddleware, sink=metrics)
    return app


def request_limits(services: ApiServices, settings: Settings) -> RequestLimits:
    """The one limiter of this app: every router of every area counts through it."""
    return RequestLimits(services.limiter, settings.api.rate_limit,
                         settings.api.rate_window_seconds, settings.api.anonymous_rate_limit,
                         services.clock)


def other_app_routers(settings: Settings) -> list[Callable[[RequestLimits], APIRouter]]:
    """Notary, marketplace, image and instance routers, each from its own settings-built
    dependencies (a single box, the tests); the platform's ingress mounts them over its actors
    (``serve_apps.app.platform_routers``). A missing one is skipped.

    Each is a factory of the app's ``RequestLimits``, so their routes share its limiter."""
    routers = []
    for module_name, attr in OTHER_APPS:
        try:
            module = importlib.import_module(module_name)
            routers.append(partial(getattr(module, attr), settings))
        except ModuleNotFoundError:
            log.info("%s not present; not mounted", module_name)
    return routers
