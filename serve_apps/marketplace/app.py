"""The marketplace API as a standalone FastAPI app: ``python -m serve_apps.marketplace.app``."""

from __future__ import annotations

import argparse

from fastapi import FastAPI

from hcp.config import Settings, get_settings
from serve_apps.edge import new_app, serve_standalone
from serve_apps.marketplace.routes import MarketplaceDeps, router


def create_app(settings: Settings | None = None, deps: MarketplaceDeps | None = None) -> FastAPI:
    settings = settings or get_settings()
    if deps is None:  # the marketplace served on its own is its own launch
        from hcp.store.db import engine_for, migrate

        migrate(engine_for(settings.resolved_database_url))
    app = new_app(settings, title="hcp marketplace", version="1")
    app.include_router(router(settings, deps=deps))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the hcp marketplace API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    serve_standalone(create_app(), get_settings(), args.host, args.port)


if __name__ == "__main__":
    main()
