"""The rental platform in one FastAPI app: marketplace, images (the gateway agents pull from)
and instances, sharing one store and one limiter. ``python -m serve_apps.instances.app``.

The platform's ingress mounts ``serve_apps.instances.routes.router`` beside the others; this
app is for a single box, the tests and ``bench.agent``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from fastapi import FastAPI

from hcp.agent.store import SqlRunStore
from hcp.clock import SystemClock
from hcp.config import Settings, get_settings
from serve_apps.edge import new_app, serve_standalone
from serve_apps.images import routes as images
from serve_apps.instances.routes import InstancesDeps
from serve_apps.instances.routes import router as instances_router
from serve_apps.marketplace import routes as marketplace
from serve_apps.ratelimit import standalone_limits


@dataclass
class PlatformDeps:
    marketplace: marketplace.MarketplaceDeps
    images: images.ImagesDeps
    instances: InstancesDeps


def build_deps(settings: Settings) -> PlatformDeps:
    m = marketplace.build_deps(settings)
    i = images.build_deps(settings, tokens=m.tokens)
    return PlatformDeps(m, i, InstancesDeps(m.service, SqlRunStore(m.service.engine), m.tokens,
                                            SystemClock()))


def create_app(settings: Settings | None = None, deps: PlatformDeps | None = None) -> FastAPI:
    settings = settings or get_settings()
    d = deps or build_deps(settings)
    app = new_app(settings, title="hcp rentals", version="1")
    limits = standalone_limits(settings, d.marketplace.service.engine)
    app.include_router(marketplace.router(settings, limits, d.marketplace))
    app.include_router(images.router(settings, deps=d.images))
    app.include_router(instances_router(settings, limits, d.instances))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve marketplace, images and instances.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    serve_standalone(create_app(), get_settings(), args.host, args.port)


if __name__ == "__main__":
    main()
