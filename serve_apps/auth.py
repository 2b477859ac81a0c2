"""FastAPI dependencies that turn a bearer token into a ``Principal`` and enforce roles.

Every app of the platform (API, notary, marketplace) authenticates through these, so a
token means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hcp.auth.tokens import Principal, Role, TokenService
from hcp.errors import AuthenticationError, PermissionDeniedError

_bearer = HTTPBearer(auto_error=False, description="JWT issued by `hcp token` or a wallet login")


def principal_dependency(tokens: TokenService) -> Callable[..., Principal]:
    """A dependency returning the caller's Principal; anonymous callers get 401."""

    # async: a sync dependency costs a worker-thread hop on every request.
    async def _principal(creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        if creds is None or not creds.credentials:
            raise AuthenticationError("a bearer token is required")
        return tokens.verify(creds.credentials)

    return _principal


def require_roles(tokens: TokenService, *roles: Role) -> Callable[..., Principal]:
    """A dependency that admits only the given roles (401 without a token, 403 with another role)."""
    allowed = frozenset(roles)
    get_principal = principal_dependency(tokens)

    async def _check(principal: Principal = Depends(get_principal)) -> Principal:
        if principal.role not in allowed:
            raise PermissionDeniedError(
                f"role {principal.role.value!r} may not do this",
                required=sorted(r.value for r in allowed),
            )
        return principal

    return _check


def optional_principal_dependency(tokens: TokenService) -> Callable[..., Principal | None]:
    """The caller's Principal, or None for an anonymous caller; a bad token is still a 401
    (a client that sends one expects it to count)."""

    async def _principal(
        creds: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Principal | None:
        if creds is None or not creds.credentials:
            return None
        return tokens.verify(creds.credentials)

    return _principal
