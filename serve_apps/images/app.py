"""hcp's image node as a standalone FastAPI app: ``python -m serve_apps.images.app``.

The platform mounts ``serve_apps.images.routes.router`` on its own ingress; this app serves the
same router alone (a provider's node, tests, the Kubo RPC client check)."""

from __future__ import annotations

import argparse

from fastapi import FastAPI

from hcp.config import Settings, get_settings
from serve_apps.edge import new_app, serve_standalone
from serve_apps.images.routes import ImagesDeps, router


def create_app(settings: Settings | None = None, deps: ImagesDeps | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Hardened like every app of the platform (bounded JSON, recursion pin, offline docs).
    app = new_app(settings, title="hcp image node", version="1")
    app.include_router(router(settings, deps=deps))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve hcp's image node (Kubo RPC, gateway, API).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    args = parser.parse_args()
    serve_standalone(create_app(), get_settings(), args.host, args.port)


if __name__ == "__main__":
    main()
