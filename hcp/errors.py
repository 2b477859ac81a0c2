"""The one error hierarchy of hcp.

Every refusal the platform makes is an ``HcpError`` subclass carrying a stable,
machine-readable ``code`` and the HTTP status it maps to. The HTTP layer maps
them once (``serve_apps``); the CLI prints ``code: detail``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

# Context fields a server-side (5xx) refusal may show: numbers the client can act on.
_PUBLIC_5XX_CONTEXT = frozenset({"retry_after", "queued", "limit", "window_seconds",
                                 "dependency"})


class HcpError(Exception):
    """Base of every typed hcp error.

    ``detail`` is for logs and the operator's CLI. What a remote client is told is
    ``to_dict()``: for a 4xx the detail and context (they describe the client's own input),
    for a 5xx only the class's ``public_detail`` and a few numeric fields, because a server
    fault's detail often quotes a driver (a host, a port, SQL, a file path).
    """

    code: str = "internal_error"
    http_status: int = 500
    # What a client is told of a 5xx; None: the detail itself, for errors whose detail is
    # composed by hcp alone (never from a driver's message).
    public_detail: ClassVar[str | None] = "internal error"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context

    def to_dict(self) -> dict[str, Any]:
        """The wire form of this refusal (HTTP bodies, WebSocket messages, CLI JSON)."""
        if self.http_status >= 500:
            shown = self.detail if self.public_detail is None else self.public_detail
            body: dict[str, Any] = {"error": self.code, "detail": shown}
            body.update({k: v for k, v in self.context.items() if k in _PUBLIC_5XX_CONTEXT})
            return body
        body = {"error": self.code, "detail": self.detail}
        body.update(self.context)
        return body

    def __reduce__(self):  # keeps errors intact across Ray's pickling of exceptions
        return (_rebuild_error, (type(self), self.detail, self.context))


def _rebuild_error(cls: type[HcpError], detail: str, context: dict[str, Any]) -> HcpError:
    return cls(detail, **context)


class ValidationError(HcpError):
    code = "validation_error"
    http_status = 422


class MalformedBodyError(HcpError):
    """A request body (or message) that is not bounded, valid JSON the platform can hold."""

    code = "malformed_body"
    http_status = 400


class BodyTooLargeError(HcpError):
    code = "body_too_large"
    http_status = 413


class BadRequestError(HcpError):
    """A request line the platform refuses before routing (NUL bytes, invalid UTF-8)."""

    code = "bad_request"
    http_status = 400


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
    public_detail = "the platform is misconfigured"


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


class DeviceUnavailableError(HcpError):
    """A device's actor did not answer: restarting after a crash, or lost with its node."""

    code = "device_unavailable"
    http_status = 503
    public_detail = "the device is not answering (it may be restarting); retry shortly"


class SwitchFailedError(HcpError):
    """A switch whose activation or health check failed; the device was rolled back."""

    code = "switch_failed"
    http_status = 503
    public_detail = "the switch failed; the device was rolled back"


class ContextUnavailableError(HcpError):
    """A mining or inference context that is not resident or not healthy."""

    code = "context_unavailable"
    http_status = 503
    public_detail = "the device's context is not available"


class StoreError(HcpError):
    code = "store_unavailable"
    http_status = 503
    public_detail = "the store is unavailable; retry later"


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


class NoClusterError(HcpError):
    """No platform runs for this HCP_HOME (or its recorded cluster does not answer)."""

    code = "no_cluster"
    http_status = 503
    public_detail = "no hcp platform is running"


class ServiceUnavailableError(HcpError):
    code = "service_unavailable"
    http_status = 503
    public_detail = "a backing service is unavailable; retry later"


class UnknownFacilityError(NotFoundError):
    code = "unknown_facility"


class HistoryUnavailableError(ServiceUnavailableError):
    """Prometheus did not answer (or refused the query): the metrics history cannot be read."""

    code = "history_unavailable"
    public_detail = "the metrics history is unavailable; retry later"


class PlatformStartError(HcpError):
    """A part of the platform did not come up at launch (no room on the cluster, a crash)."""

    code = "platform_start_failed"
    http_status = 503
    public_detail = "the platform did not start"


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


class UnsatisfiableWorkloadError(InvalidWorkloadError):
    """Requirements no GPU of the fleet can ever meet (a model it lacks, more memory)."""

    code = "unsatisfiable_workload"


class WorkloadTransitionError(ConflictError):
    """A workload state change its current state does not allow (e.g. cancelling a finished one)."""

    code = "invalid_workload_transition"


class IdempotencyKeyReusedError(ConflictError):
    """An Idempotency-Key already used by this owner for a different workload spec."""

    code = "idempotency_key_reused"


class NoGpuAvailableError(ServiceUnavailableError):
    """No GPU can be put in INFERENCE now (all busy, curtailed, or none fits)."""

    code = "no_gpu_available"
    public_detail = "no GPU can serve this now; retry later"


class RouterBusyError(ServiceUnavailableError):
    """The router's queue is full; retry later."""

    code = "router_busy"
    public_detail = "the router's queue is full; retry later"


class RouterUnavailableError(ServiceUnavailableError):
    code = "router_unavailable"
    public_detail = "the workload router is unavailable; retry later"


class OptimizerUnavailableError(ServiceUnavailableError):
    """The optimizer actor is not running, so there are no current economics to show."""

    code = "optimizer_unavailable"
    public_detail = "the optimizer is not running"


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
    public_detail = "every sandbox is busy; retry later"


class NonceStoreUnavailableError(ServiceUnavailableError):
    code = "nonce_store_unavailable"
    public_detail = "the nonce store is unavailable; retry later"


class NoActiveTaskError(NotFoundError):
    code = "no_active_task"


# --- marketplace and chain (issue 6) ---


class ChainUnavailableError(ServiceUnavailableError):
    """The EVM node cannot be reached, or a receipt did not come in time."""

    code = "chain_unavailable"
    public_detail = "the chain node is unavailable; retry later"


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


class SupplyLimitError(ConflictError):
    """A mint that would take the token's total supply past a uint256."""

    code = "supply_limit_exceeded"


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



# --- backtest input hygiene (issue 16) ---

class MarketDataGapError(MarketDataError):
    """``--strict`` found a gap, trim or fill in the input series; ``issues`` lists every one."""

    code = "market_data_gap"


# --- Python SDK (issue 16) ---

class ApiUnreachableError(ServiceUnavailableError):
    """The SDK could not reach the platform API (refused, timed out, reset) within its retries."""

    code = "api_unreachable"


class UnexpectedResponseError(HcpError):
    """The API answered something the SDK cannot read (not JSON, or not the documented shape)."""

    code = "unexpected_response"
    http_status = 502


# --- container images by CID (issue 12) ----------------------------------------------------


class BlockNotFoundError(NotFoundError):
    """A block (or a DAG's root) this store does not hold; ``cid`` names it."""

    code = "block_not_found"


class TamperedBlockError(HcpError):
    """Bytes whose hash is not the one their CID names: refused, never stored or served."""

    code = "block_hash_mismatch"
    http_status = 502


class InvalidBlockError(ValidationError):
    """Bytes that are not a valid block of their CID's codec (bad dag-pb, bad UnixFS)."""

    code = "invalid_block"


class InvalidCarError(ValidationError):
    """A CARv1 stream that cannot be read (bad header, truncated section)."""

    code = "invalid_car"


class StorageFullError(HcpError):
    """The block store's hard cap would be exceeded even after evicting every unpinned,
    unleased block: 507 Insufficient Storage (the server's space, not the request's size)."""

    code = "storage_full"
    http_status = 507


class UploadTooLargeError(PayloadTooLargeError):
    """An image upload larger than the per-upload limit (413)."""

    code = "upload_too_large"


class ImageNotFoundError(NotFoundError):
    code = "image_not_found"


class InvalidImageError(ValidationError):
    """An image archive or image directory that is not a usable Docker/OCI image."""

    code = "invalid_image"


class PeerFetchError(ServiceUnavailableError):
    """No peer could serve a block (every peer failed or served wrong bytes)."""

    code = "peers_exhausted"


class RangeNotSatisfiableError(HcpError):
    code = "range_not_satisfiable"
    http_status = 416


class ImageBackendError(ServiceUnavailableError):
    """The configured image backend (Kubo RPC, Docker Engine) failed or is unreachable."""

    code = "image_backend_unavailable"


# --- operations: circuit breakers (issue 15) ---


class DependencyUnavailableError(ServiceUnavailableError):
    """A dependency (PostgreSQL, Redis, the chain node, the image store) failed or its circuit
    breaker is open; ``retry_after`` says when to try again (seconds). The body names the
    dependency by its kind only, never its host."""

    code = "dependency_unavailable"
    http_status = 503
    public_detail = None  # built from the dependency's kind only (hcp.resilience)

    def __init__(self, detail: str, retry_after: int, **context: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **context)
        self.retry_after = retry_after

    def __reduce__(self):
        return (_rebuild_rate_limited, (type(self), self.detail, self.context))


class StoreUnavailableError(DependencyUnavailableError, StoreError):
    """PostgreSQL failed or its breaker is open: a dependency's 503 with ``retry_after``, and
    a ``StoreError`` to the loops that keep going through a store outage (checkpoints, the
    validators' buffers)."""


# --- oracle validators (issue 14) ---


class OracleSignatureError(HcpError):
    """A heartbeat, challenge, answer, report or evidence signature that does not verify
    under the key registered for the identity it names."""

    code = "oracle_bad_signature"
    http_status = 403


class UnknownIdentityError(HcpError):
    """A provider or validator with no registered (or a revoked) key."""

    code = "oracle_unknown_identity"
    http_status = 403


class StaleMessageError(ValidationError):
    """A signed message outside its freshness window (too old, or dated in the future)."""

    code = "oracle_stale_message"


class HeartbeatReplayError(ReplayDetectedError):
    """A heartbeat whose sequence number is not above the last one accepted."""

    code = "heartbeat_replayed"


class UnknownChallengeError(NotFoundError):
    """An answer to a challenge this validator never issued (or has forgotten)."""

    code = "unknown_challenge"


class AnswerReplayedError(ReplayDetectedError):
    """An answer to a challenge that is already closed."""

    code = "answer_replayed"


class CrossProviderAnswerError(PermissionDeniedError):
    """An answer naming another provider than the one its challenge was sent to."""

    code = "answer_wrong_provider"


class AnswerMismatchError(ValidationError):
    """An answer whose CID, path, range or nonce are not its challenge's."""

    code = "answer_mismatch"


class UnknownValidatorError(PermissionDeniedError):
    """A vote or signature from an identity outside the validator set."""

    code = "unknown_validator"


class EquivocationError(ConflictError):
    """A validator voting twice, differently, on one subject."""

    code = "validator_equivocated"


class InvalidEvidenceError(ValidationError):
    """An evidence bundle or report whose digest or signatures do not check."""

    code = "invalid_evidence"


class StandingConflictError(ConflictError):
    """A provider's standing changed under this decision (another validator stepped it first):
    reload it and step the finding again."""

    code = "standing_conflict"


class IdentityConflictError(ConflictError):
    """A key registered for an identity that already has another role (a provider may not
    take a validator's name, nor the other way round)."""

    code = "oracle_identity_conflict"

# --- provider agent and instances (issue 13) ---


class InstanceNotFoundError(NotFoundError):
    """No such instance, or one the caller may not see (answered alike: ids do not leak)."""

    code = "instance_not_found"


class GpuBusyError(ConflictError):
    """The GPU cannot be handed to this job now: another job or workload holds it."""

    code = "gpu_busy"


class TamperedImageError(HcpError):
    """An image's blocks did not match its CID (a peer or the local copy was altered)."""

    code = "image_tampered"
    http_status = 502
    public_detail = "the image's blocks do not match its CID"


class ContainerEngineError(ServiceUnavailableError):
    """Docker Engine failed or cannot be reached (a restart, a lost socket)."""

    code = "container_engine_unavailable"

# --- stake (issue 14) ---


class InsufficientStakeError(ConflictError):
    """An unstake larger than the provider's bonded stake; nothing moved."""

    code = "insufficient_stake"


class StakeUnbondingError(ConflictError):
    """A stake withdrawal with nothing unbonding, or before the unbonding period is over."""

    code = "stake_unbonding"
