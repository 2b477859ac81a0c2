"""The one error hierarchy of hcp.

Every refusal the platform makes is an ``HcpError`` subclass carrying a stable,
machine-readable ``code`` and the HTTP status it maps to. The HTTP layer maps
them once (``serve_apps``); the CLI prints ``code: detail``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class HcpError(Exception):
    """Base of every typed hcp error."""

    code: str = "internal_error"
    http_status: int = 500

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "detail": self.detail}
        body.update(self.context)
        return body

    def __reduce__(self):  # keeps errors intact across Ray's pickling of exceptions
        return (_rebuild_error, (type(self), self.detail, self.context))


def _rebuild_error(cls: type[HcpError], detail: str, context: dict[str, Any]) -> HcpError:
    return cls(detail, **context)


class ValidationError(HcpError):
    code = "validation_error"
    http_status = 422


@dataclass(frozen=True)
class FieldProblem:
    """One bad field in a structured input: where it is, and what is wrong."""

    location: str
    message: str
    value: Any = field(default=None)

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class FleetSpecError(ValidationError):
    """A fleet spec file that cannot be used; ``problems`` lists every bad field."""

    code = "invalid_fleet_spec"

    def __init__(self, detail: str, problems: list[FieldProblem] | None = None) -> None:
        self.problems = list(problems or [])
        lines = [detail] + [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines), problems=[str(p) for p in self.problems])
        self.detail = detail

    def __reduce__(self):
        return (FleetSpecError, (self.detail, self.problems))


class ConfigError(HcpError):
    code = "invalid_configuration"
    http_status = 500


class NotFoundError(HcpError):
    code = "not_found"
    http_status = 404


class UnknownDeviceError(NotFoundError):
    code = "unknown_device"


class ConflictError(HcpError):
    code = "conflict"
    http_status = 409


class InvalidModeError(ValidationError):
    code = "invalid_mode"


class InvalidTransitionError(ConflictError):
    """A mode change the device cannot make from where it is (e.g. out of CURTAILED by a workload)."""

    code = "invalid_transition"


class SwitchFailedError(HcpError):
    """A switch whose activation or health check failed; the device was rolled back."""

    code = "switch_failed"
    http_status = 503


class ContextUnavailableError(HcpError):
    """A mining or inference context that is not resident or not healthy."""

    code = "context_unavailable"
    http_status = 503


class StoreError(HcpError):
    code = "store_unavailable"
    http_status = 503


class MiningError(ValidationError):
    code = "invalid_mining_input"
