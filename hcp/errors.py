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


class AuthenticationError(HcpError):
    """No credentials, or credentials that do not verify."""

    code = "authentication_required"
    http_status = 401


class PermissionDeniedError(HcpError):
    """Authenticated, but the role may not do this."""

    code = "forbidden"
    http_status = 403


class RateLimitedError(HcpError):
    """Too many requests; ``retry_after`` says when to come back (seconds)."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, detail: str, retry_after: int, **context: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **context)
        self.retry_after = retry_after

    def __reduce__(self):
        return (_rebuild_rate_limited, (type(self), self.detail, self.context))


def _rebuild_rate_limited(cls: type[RateLimitedError], detail: str, context: dict[str, Any]) -> HcpError:
    ctx = dict(context)
    return cls(detail, retry_after=ctx.pop("retry_after"), **ctx)


class ServiceUnavailableError(HcpError):
    code = "service_unavailable"
    http_status = 503


# --- optimizer and market (issue 3) ---


class MarketDataError(ValidationError):
    """A price series or tick that cannot be used (missing columns, bad values, no overlap)."""

    code = "market_data_invalid"


# --- HTTP API, workloads and router (issue 4) ---


class WorkloadNotFoundError(NotFoundError):
    code = "workload_not_found"


class InvalidWorkloadError(ValidationError):
    """A workload spec that does not validate; ``problems`` lists every bad field."""

    code = "invalid_workload"


class WorkloadTransitionError(ConflictError):
    """A workload state change its current state does not allow (e.g. cancelling a finished one)."""

    code = "invalid_workload_transition"


class IdempotencyKeyReusedError(ConflictError):
    """An Idempotency-Key already used by this owner for a different workload spec."""

    code = "idempotency_key_reused"


class NoGpuAvailableError(ServiceUnavailableError):
    """No GPU can be put in INFERENCE now (all busy, curtailed, or none fits)."""

    code = "no_gpu_available"


class RouterBusyError(ServiceUnavailableError):
    """The router's queue is full; retry later."""

    code = "router_busy"


class RouterUnavailableError(ServiceUnavailableError):
    code = "router_unavailable"


class OptimizerUnavailableError(ServiceUnavailableError):
    """The optimizer actor is not running, so there are no current economics to show."""

    code = "optimizer_unavailable"


class UnknownModelError(NotFoundError):
    """An inference request naming a model this platform does not serve."""

    code = "model_not_found"


# --- notary (issue 5) ---

class BadSubmissionError(HcpError):
    """A claim whose form, JSON or fields are malformed (ML-Chain v6 answers 400)."""

    code = "bad_submission"
    http_status = 400


class InvalidPayloadJsonError(BadSubmissionError):
    code = "invalid_payload_json"


class InvalidPayloadFieldError(BadSubmissionError):
    code = "invalid_payload_field"


class MissingFieldError(BadSubmissionError):
    code = "missing_field"


class InvalidArtifactError(BadSubmissionError):
    """An artifact that is not a safe .tar.gz (traversal, links, devices, not gzip)."""

    code = "invalid_artifact"


class UnknownTaskError(BadSubmissionError):
    code = "unknown_task"


class HashMismatchError(BadSubmissionError):
    code = "hash_mismatch"


class PayloadTooLargeError(HcpError):
    code = "payload_too_large"
    http_status = 413


class ArtifactTooLargeError(PayloadTooLargeError):
    code = "artifact_too_large"


class ClaimAuthenticationError(HcpError):
    """Bad or missing signature, unknown or revoked miner: one answer for all, by design."""

    code = "authentication_failed"
    http_status = 403


class ReplayDetectedError(HcpError):
    code = "replay_detected"
    http_status = 403


class VerificationFailedError(HcpError):
    """The sandbox did not reproduce the claim; ``details`` says why (ML-Chain v6 wording)."""

    code = "verification_failed"
    http_status = 422


class SandboxBusyError(ServiceUnavailableError):
    code = "sandbox_queue_full"


class NonceStoreUnavailableError(ServiceUnavailableError):
    code = "nonce_store_unavailable"


class NoActiveTaskError(NotFoundError):
    code = "no_active_task"


# --- marketplace and chain (issue 6) ---


class ChainUnavailableError(ServiceUnavailableError):
    """The EVM node cannot be reached, or a receipt did not come in time."""

    code = "chain_unavailable"


class ChainRevertError(ConflictError):
    """A contract call the chain refused; ``reason`` is the contract's revert string."""

    code = "chain_reverted"

    @property
    def reason(self) -> str:
        return str(self.context.get("reason", ""))


class InsufficientFundsError(ConflictError):
    """A free balance too small for a lock or transfer; nothing moved."""

    code = "insufficient_funds"
    http_status = 402


class EscrowStateError(ConflictError):
    """An escrow operation its escrow's state forbids (settled, missing, over-release)."""

    code = "escrow_conflict"


class IdempotencyConflictError(ConflictError):
    """An operation key reused with different parameters."""

    code = "idempotency_conflict"


class JobTransitionError(InvalidTransitionError):
    """A job lifecycle step its current status does not allow."""

    code = "invalid_job_transition"


class InvalidCidError(ValidationError):
    code = "invalid_cid"


class OfferNotFoundError(NotFoundError):
    code = "offer_not_found"


class JobNotFoundError(NotFoundError):
    code = "job_not_found"


class OfferUnavailableError(ConflictError):
    code = "offer_unavailable"


class WalletAuthError(AuthenticationError):
    """A wallet login whose challenge is unknown, expired, used, or badly signed."""

    code = "wallet_login_failed"



# --- operations: circuit breakers (issue 15) ---


class DependencyUnavailableError(ServiceUnavailableError):
    """A dependency (PostgreSQL, Redis, the chain node, the image store) failed or its circuit
    breaker is open; ``retry_after`` says when to try again (seconds). The body names the
    dependency by its kind only, never its host."""

    code = "dependency_unavailable"
    http_status = 503

    def __init__(self, detail: str, retry_after: int, **context: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **context)
        self.retry_after = retry_after

    def __reduce__(self):
        return (_rebuild_rate_limited, (type(self), self.detail, self.context))
