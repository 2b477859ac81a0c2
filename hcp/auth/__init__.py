"""Identity: roles, JWT bearer tokens and the principal a request acts as."""

from hcp.auth.tokens import Principal, Role, TokenService

__all__ = ["Principal", "Role", "TokenService"]
