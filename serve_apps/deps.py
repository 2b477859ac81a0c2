"""The per-request guard: bearer token → Principal, then the per-client rate limit."""

# No `from __future__ import annotations`: FastAPI resolves the local `Client` alias at runtime.

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends

from hcp.auth.tokens import Principal, TokenService
from hcp.errors import RateLimitedError
from serve_apps.auth import principal_dependency
from serve_apps.services import ApiServices


def rate_key(principal: Principal) -> str:
    return f"api:{principal.role.value}:{principal.subject}"


async def check_rate(
    services: ApiServices, principal: Principal, limit: int, window_s: int
) -> None:
    """Count one request of this client; 429 with Retry-After once its window is full."""
    now = services.clock.now()
    key = rate_key(principal)
    decision = await services.limiter.hit(key, limit, window_s, now)
    if not decision.allowed:
        raise RateLimitedError(
            f"more than {limit} requests in {window_s} s",
            retry_after=decision.retry_after,
            limit=limit,
            window_seconds=window_s,
        )


def client_dependency(
    services: ApiServices, tokens: TokenService, limit: int, window_s: int
) -> Callable[..., Awaitable[Principal]]:
    """Authenticated (``serve_apps.auth``) and rate-limited caller: 401 without a valid token,
    429 over the limit."""
    get_principal = principal_dependency(tokens)

    async def _client(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        await check_rate(services, principal, limit, window_s)
        return principal

    return _client
