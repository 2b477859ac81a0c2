"""One request limiter for every route of every app (platform API, notary, marketplace).

Callers with a valid bearer token are counted per principal (``api:<role>:<subject>``), the
same keys the platform's own routes use; anonymous callers per client address. The client
address is the peer the HTTP server saw: a forwarded header (``X-Forwarded-For``) is only
believed from the proxies in ``HCP_API_TRUSTED_PROXIES`` (see ``trusted_proxy_env``), so a
client cannot choose the address its requests are counted under.
"""

# No `from __future__ import annotations`: FastAPI resolves the dependency signatures.

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from hcp.auth.tokens import Principal, TokenService
from hcp.clock import Clock, SystemClock
from hcp.errors import HcpError, RateLimitedError
from hcp.ratelimit import LeasedRateLimiter

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hcp.config import Settings


def rate_key(principal: Principal) -> str:
    return f"api:{principal.role.value}:{principal.subject}"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@dataclass
class RequestLimits:
    limiter: LeasedRateLimiter
    limit: int
    window_s: int
    anonymous_limit: int
    clock: Clock = field(default_factory=SystemClock)

    async def _hit(self, key: str, limit: int) -> None:
        decision = await self.limiter.hit(key, limit, self.window_s, self.clock.now())
        if not decision.allowed:
            raise RateLimitedError(
                f"more than {limit} requests in {self.window_s} s",
                retry_after=decision.retry_after,
                limit=limit,
                window_seconds=self.window_s,
            )

    async def check(self, principal: Principal) -> None:
        """Count one request of this principal; 429 with Retry-After once its window is full."""
        await self._hit(rate_key(principal), self.limit)

    async def check_anonymous(self, address: str) -> None:
        await self._hit(f"api:anonymous:{address}", self.anonymous_limit)


def rate_guard(tokens: TokenService, limits: RequestLimits) -> Callable[..., Awaitable[None]]:
    """A router-level dependency: every request is counted, by token if it has a valid one,
    else by address. It never refuses a bad token itself (the route's auth does, with 401)."""

    async def _guard(request: Request) -> None:
        auth = request.headers.get("authorization", "")
        scheme, _, credentials = auth.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            try:
                principal = tokens.verify(credentials.strip())
            except HcpError:
                pass
            else:
                await limits.check(principal)
                return
        await limits.check_anonymous(client_address(request))

    return _guard


def trusted_proxy_env(trusted: list[str]) -> dict[str, str]:
    """Environment for the HTTP server processes (uvicorn in Serve's proxy): uvicorn believes
    ``X-Forwarded-For`` from ``FORWARDED_ALLOW_IPS``, which defaults to loopback."""
    return {"FORWARDED_ALLOW_IPS": ",".join(trusted)}


def standalone_limits(settings: "Settings", engine: "Engine") -> RequestLimits:
    """Limits for an app served on its own (the notary or marketplace without the platform
    ingress): counters in its store, leased as the ingress does."""
    from hcp.ratelimit import SqlRateLimiter

    return RequestLimits(LeasedRateLimiter(SqlRateLimiter(engine), settings.api.rate_max_lease),
                         settings.api.rate_limit, settings.api.rate_window_seconds,
                         settings.api.anonymous_rate_limit)
