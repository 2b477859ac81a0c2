"""``hcp token`` and the API block of ``hcp run`` (router actor + Serve application)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer
from rich.console import Console

from hcp.auth.tokens import Role, TokenService
from hcp.config import Settings
from hcp.errors import HcpError
from hcp.logging_setup import configure_logging

log = logging.getLogger(__name__)
_err = Console(stderr=True)


def token_cmd(
    role: Annotated[Role, typer.Option("--role", help="admin, customer, provider or miner.")],
    subject: Annotated[
        str, typer.Option("--subject", help="Who the token speaks for (workload owner).")
    ],
    ttl: Annotated[int | None, typer.Option("--ttl", min=1, help="Lifetime in seconds.")] = None,
) -> None:
    """Print a JWT bearer token for the platform API (HCP_JWT_SECRET or HCP_HOME/jwt.secret)."""
    settings = Settings()
    configure_logging(settings.log_level)
    try:
        token = TokenService.from_settings(settings).issue(subject.strip(), role, ttl)
    except HcpError as exc:
        _err.print(f"[red]error[/] {exc.code}: {exc.detail}")
        raise typer.Exit(code=2) from None
    print(token)


def start_api(handles: Any, settings: Settings) -> tuple[str, Any]:
    """Start (or reuse) the router actor over the fleet, then deploy the Serve app.

    Returns the API's URL and the router's handle: keep the handle for as long as the platform
    runs (Ray collects a non-detached actor, named or not, once no handle to it is left).
    """
    from actors.router import launch_router
    from serve_apps.app import deploy

    router = launch_router(handles, settings)
    return deploy(settings), router


def stop_api() -> None:
    from ray import serve

    try:
        serve.shutdown()
    except Exception:  # shutting down: the cluster goes next anyway
        log.exception("Serve did not shut down cleanly")
