"""The per-request guard: bearer token → Principal, then the per-client rate limit."""

# No `from __future__ import annotations`: FastAPI resolves the local `Client` alias at runtime.

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends

from hcp.auth.tokens import Principal, TokenService
from serve_apps.auth import principal_dependency
from serve_apps.ratelimit import RequestLimits


def client_dependency(
    tokens: TokenService, limits: RequestLimits
) -> Callable[..., Awaitable[Principal]]:
    """Authenticated (``serve_apps.auth``) and rate-limited caller: 401 without a valid token,
    429 over the limit."""
    get_principal = principal_dependency(tokens)

    async def _client(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        await limits.check(principal)
        return principal

    return _client
