"""JWT bearer tokens (HS256, PyJWT) carrying a subject and one role."""

from __future__ import annotations

import enum
import logging
import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt

from hcp.clock import Clock, SystemClock
from hcp.config import Settings
from hcp.errors import AuthenticationError, ConfigError

log = logging.getLogger(__name__)

ISSUER = "hcp"


class Role(str, enum.Enum):
    ADMIN = "admin"
    CUSTOMER = "customer"
    PROVIDER = "provider"
    MINER = "miner"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as."""

    subject: str
    role: Role
    # When the token it came from expires: long-lived connections (WebSockets) end then.
    expires_at: datetime | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def load_or_create_secret(settings: Settings) -> str:
    """The configured secret, or one generated once and kept (mode 0600) under HCP_HOME."""
    if settings.auth.jwt_secret:
        return settings.auth.jwt_secret
    path: Path = settings.home / "jwt.secret"
    try:
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        # O_EXCL: when two processes race, one writes and both read the winner's secret.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(secret)
        log.info("generated a JWT secret at %s", path)
        return secret
    except OSError as exc:
        raise ConfigError(f"cannot read or create the JWT secret at {path}: {exc}") from exc


_VERIFIED_CACHE_SIZE = 10_000


class TokenService:
    """Issues and verifies tokens; the clock is injected so expiry is testable."""

    def __init__(self, secret: str, ttl_seconds: int = 24 * 3600, clock: Clock | None = None) -> None:
        if len(secret) < 32:
            raise ConfigError("the JWT secret must be at least 32 characters")
        self._secret = secret
        self._ttl = ttl_seconds
        self._clock = clock or SystemClock()
        # Verified tokens → (principal, exp): a client sends the same token with every request,
        # and checking its signature again each time was a visible part of a request's cost.
        # Only valid tokens are kept; expiry is still checked on every use.
        self._verified: OrderedDict[str, tuple[Principal, int]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> TokenService:
        return cls(load_or_create_secret(settings), settings.auth.jwt_ttl_seconds, clock)

    def issue(self, subject: str, role: Role, ttl_seconds: int | None = None) -> str:
        if not subject:
            raise AuthenticationError("a token needs a subject")
        now: datetime = self._clock.now()
        claims = {
            "sub": subject,
            "role": Role(role).value,
            "iss": ISSUER,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=ttl_seconds or self._ttl)).timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> Principal:
        now = self._clock.now()
        hit = self._verified.get(token)
        if hit is not None:
            principal, exp = hit
            if exp <= int(now.timestamp()):
                raise AuthenticationError("token expired")
            self._verified.move_to_end(token)
            return principal
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["sub", "exp", "iat", "iss"], "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid token: {exc}") from exc
        # Expiry against the injected clock, not the wall clock, so tests can move time.
        if int(claims["exp"]) <= int(now.timestamp()):
            raise AuthenticationError("token expired")
        try:
            role = Role(claims.get("role"))
        except ValueError as exc:
            raise AuthenticationError(f"unknown role {claims.get('role')!r}") from exc
        exp = int(claims["exp"])
        try:
            expires_at: datetime | None = datetime.fromtimestamp(exp, tz=UTC)
        except (OverflowError, OSError, ValueError):
            expires_at = None  # beyond datetime's range: as good as never
        principal = Principal(subject=str(claims["sub"]), role=role, expires_at=expires_at)
        self._verified[token] = (principal, int(claims["exp"]))
        if len(self._verified) > _VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal
