"""Builds the platform API's FastAPI app from its services (no Ray here: tests build it too)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable

from fastapi import APIRouter, FastAPI

from hcp.auth.tokens import TokenService
from hcp.config import Settings
from serve_apps.deps import client_dependency
from serve_apps.errors import install_error_handlers
from serve_apps.live import LiveHub, live_router
from serve_apps.openai_api import openai_router
from serve_apps.routes_fleet import fleet_router
from serve_apps.routes_workloads import workloads_router
from serve_apps.services import ApiServices

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"
# Routers of other areas, mounted when their module is present: (module, factory function).
OTHER_APPS = (("serve_apps.notary.routes", "router"), ("serve_apps.marketplace.routes", "router"))


def build_app(
    services: ApiServices,
    tokens: TokenService,
    settings: Settings,
    extra_routers: Iterable[APIRouter] = (),
) -> FastAPI:
    app = FastAPI(
        title="hcp platform API",
        version=API_VERSION,
        description="Workloads, fleet resources, switch history, economics, billing, live updates "
        "and OpenAI-compatible embeddings. Every route needs a JWT bearer token "
        '(`hcp token --role R --subject S`); refusals are `{"error", "detail"}`.',
    )
    install_error_handlers(app)
    client = client_dependency(
        services, tokens, settings.api_rate_limit, settings.api_rate_window_seconds
    )
    app.include_router(workloads_router(services, client))
    app.include_router(fleet_router(services, client, settings))
    app.include_router(openai_router(services, client))
    hub = LiveHub(services.feed, settings.api_live_poll_seconds)
    app.include_router(
        live_router(
            services,
            tokens,
            hub,
            settings.api_ws_heartbeat_seconds,
            settings.api_rate_limit,
            settings.api_rate_window_seconds,
        )
    )
    for router in extra_routers:
        app.include_router(router)
    return app


def other_app_routers(settings: Settings) -> list[APIRouter]:
    """Notary and marketplace routers, if those areas are installed; a broken one is skipped."""
    routers = []
    for module_name, attr in OTHER_APPS:
        try:
            module = importlib.import_module(module_name)
            routers.append(getattr(module, attr)(settings))
        except ModuleNotFoundError:
            log.info("%s not present; not mounted", module_name)
        except Exception:  # another area's failure must not take the platform API down
            log.exception("could not mount %s", module_name)
    return routers
