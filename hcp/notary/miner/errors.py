"""Errors of the miner SDK (typed, like every hcp refusal)."""

from __future__ import annotations

from typing import Any

from hcp.errors import HcpError, ValidationError


class MinerKeyError(ValidationError):
    """A key file that is missing, malformed, or readable by others."""

    code = "invalid_miner_key"


class NotaryRequestError(HcpError):
    """The notary answered a request other than a claim with an error (or not at all)."""

    code = "notary_request_failed"
    http_status = 502

    def __init__(self, detail: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(detail, status=status, body=body)
        self.status = status
        self.body = body

    def __reduce__(self):
        return (NotaryRequestError, (self.detail, self.status, self.body))
