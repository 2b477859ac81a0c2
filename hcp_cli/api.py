"""``hcp token``: a JWT for the platform API."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console

from hcp.auth.tokens import Role, TokenService
from hcp.config import Settings
from hcp.errors import HcpError
from hcp.logging_setup import configure_for

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
    configure_for(settings)
    try:
        token = TokenService.from_settings(settings).issue(subject.strip(), role, ttl)
    except HcpError as exc:
        _err.print(f"[red]error[/] {exc.code}: {exc.detail}")
        raise typer.Exit(code=2) from None
    print(token)
