"""The notary pipeline: every stage a claim passes, in ML-Chain v6's order.

flood limit (per client) -> payload -> Ed25519 signature -> task -> nonce (fast store +
permanent ledger) -> per-miner quota -> SHA-256 -> safe extraction -> sandbox -> score check
-> ledger. Cheap checks come first so garbage costs almost nothing; the miner's quota is
counted only for a claim that is authentic and fresh, so nobody can spend another miner's
quota, not even by replaying a claim that miner signed.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError
from nacl.signing import VerifyKey

from hcp.clock import Clock, SystemClock
from hcp.errors import (
    ClaimAuthenticationError,
    HashMismatchError,
    HcpError,
    InvalidArtifactError,
    InvalidPayloadFieldError,
    MissingFieldError,
    PayloadTooLargeError,
    RateLimitedError,
    ReplayDetectedError,
    SandboxBusyError,
    UnknownTaskError,
    VerificationFailedError,
)
from hcp.notary.artifact import safe_extract
from hcp.notary.canonical import signed_forms
from hcp.notary.economics import Penalty, penalty_for
from hcp.notary.ledger import ClaimDraft, ClaimRecord, NotaryLedger, TaskRecord
from hcp.notary.metrics import NotaryMetrics, NullNotaryMetrics
from hcp.notary.nonces import NonceStore
from hcp.notary.payload import ClaimPayload, parse_payload
from hcp.notary.policy import NotaryPolicy
from hcp.notary.pool import SandboxJob, SandboxPool
from hcp.notary.sandbox.base import (
    HYPERPARAMETERS_NAME,
    WASM_NAME,
    SandboxLimits,
    SandboxOutcome,
    SandboxResult,
)
from hcp.notary.storage import ArtifactStore, DatasetStore
from hcp.ratelimit import RateLimiter

log = logging.getLogger(__name__)

_FAILURE_WORDING = {
    SandboxOutcome.TIMEOUT: "Sandbox execution timed out",
    SandboxOutcome.OUT_OF_MEMORY: "Sandbox out of memory",
    SandboxOutcome.FUEL_EXHAUSTED: "Sandbox fuel exhausted",
    SandboxOutcome.TRAP: "Sandbox trap",
    SandboxOutcome.INVALID_WASM: "Invalid WASM",
    SandboxOutcome.NO_SCORE: "No score",
}


@dataclass(frozen=True)
class Submission:
    """What arrived over the wire, before any check."""

    payload: str | bytes | None
    signature: str | None
    artifact: bytes | None
    client: str
    admitted: bool = False  # the flood limit already ran (``admit``) before the body was read


@dataclass(frozen=True)
class Verdict:
    claim: ClaimRecord
    stages: dict[str, float] = field(default_factory=dict)

    def to_response(self) -> dict[str, Any]:
        c = self.claim
        return {"status": "verified", "submission_id": c.submission_id,
                "verified_score": c.verified_score, "claimed_score": c.claimed_score,
                "task_id": c.task_id, "miner_id": c.miner_id, "artifact_hash": c.artifact_hash,
                "duplicate_of": c.duplicate_of, "reward": c.reward,
                "verification_seconds": c.verification_seconds}


class NotaryPipeline:
    def __init__(self, ledger: NotaryLedger, limiter: RateLimiter, nonces: NonceStore,
                 pool: SandboxPool, datasets: DatasetStore, artifacts: ArtifactStore,
                 policy: NotaryPolicy, clock: Clock | None = None,
                 metrics: NotaryMetrics | None = None) -> None:
        self.ledger = ledger
        self.limiter = limiter
        self.nonces = nonces
        self.pool = pool
        self.datasets = datasets
        self.artifacts = artifacts
        self.policy = policy
        self.clock = clock or SystemClock()
        self.metrics = metrics or NullNotaryMetrics()
        self._dataset_cache: dict[str, bytes] = {}

    def admit(self, client: str, stages: dict[str, float] | None = None) -> None:
        """The per-client flood guard: cheap, and run before the request body is even read."""
        try:
            with self._stage("rate_limit", stages if stages is not None else {}):
                p = self.policy
                self._limit(f"notary:client:{client}", p.client_limit, p.client_window_seconds,
                            self.clock.now(), "too many requests from this client")
        except HcpError as exc:
            self.metrics.rejected(exc.code)
            raise

    def submit(self, sub: Submission) -> Verdict:
        stages: dict[str, float] = {}
        started = self.clock.monotonic()
        if not sub.admitted:
            self.admit(sub.client, stages)
        try:
            claim = self._submit(sub, stages, started)
        except HcpError as exc:
            self.metrics.rejected(exc.code)
            raise
        self.metrics.verified(claim.verification_seconds)
        return Verdict(claim, stages)

    @contextmanager
    def _stage(self, name: str, stages: dict[str, float]) -> Iterator[None]:
        t0 = self.clock.monotonic()
        try:
            yield
        finally:
            dt = self.clock.monotonic() - t0
            stages[name] = dt
            self.metrics.stage(name, dt)

    def _submit(self, sub: Submission, stages: dict[str, float], started: float) -> ClaimRecord:
        p = self.policy
        now = self.clock.now()
        with self._stage("parse", stages):
            payload = parse_payload(sub.payload, p.max_payload_bytes)
            if sub.artifact is None:
                raise MissingFieldError("file 'artifact' is required", field="artifact")
            if len(sub.artifact) > p.max_artifact_bytes:
                raise PayloadTooLargeError(f"artifact exceeds {p.max_artifact_bytes} bytes",
                                           limit=p.max_artifact_bytes)
        with self._stage("signature", stages):
            signature = self._verify_signature(payload, sub.signature)
        with self._stage("task", stages):
            task = self._task(payload, now)
        with self._stage("replay", stages):
            self._check_nonce(payload, now)
        # Only a fresh, authentic claim counts against its miner's quota: anyone can replay a
        # signed payload they have seen, and a replay must cost the miner nothing.
        try:
            with self._stage("quota", stages):
                self._limit(f"notary:miner:{payload.miner_id}", p.miner_limit,
                            p.miner_window_seconds, now, "submission quota of this miner exhausted")
        except RateLimitedError:
            self.nonces.release(payload.nonce)  # never processed: the miner may send it again
            raise
        try:
            with self._stage("integrity", stages):
                actual = "sha256:" + hashlib.sha256(sub.artifact).hexdigest()
                if actual != payload.artifact_hash:
                    raise HashMismatchError("artifact bytes do not match artifact_hash",
                                            expected=payload.artifact_hash, actual=actual)
            with self._stage("extract", stages):
                wasm, hyper = self._extract(sub.artifact)
            with self._stage("sandbox", stages):
                result = self.pool.run(SandboxJob(wasm, hyper, self._dataset(task),
                                                  self._limits(task)))
        except SandboxBusyError:
            # Our capacity, not the miner's fault: the same signed claim may come back.
            self.nonces.release(payload.nonce)
            raise
        with self._stage("ledger", stages):
            return self._record(payload, signature, task, result, sub.artifact, now, started)

    # --- stages -------------------------------------------------------------------------
    def _limit(self, key: str, limit: int, window: int, now: datetime, what: str) -> None:
        decision = self.limiter.hit(key, limit, window, now)
        if not decision.allowed:
            raise RateLimitedError(what, retry_after=decision.retry_after)

    def _verify_signature(self, payload: ClaimPayload, signature_hex: str | None) -> str:
        fail = ClaimAuthenticationError("signature does not verify for this miner")
        if not signature_hex:
            raise fail
        try:
            signature = bytes.fromhex(signature_hex.strip())
        except ValueError:
            raise fail from None
        if len(signature) != 64:
            raise fail
        key = self.ledger.active_public_key(payload.miner_id)
        if key is None:
            raise fail
        try:
            verifier = VerifyKey(key)
        except (NaclValueError, ValueError, TypeError):
            raise fail from None
        # RFC 8785 (JCS) first — what miners sign now, in any language — then the legacy
        # json.dumps form of earlier clients; most payloads have one form only.
        for message in signed_forms(payload.raw):
            try:
                # libsodium refuses non-canonical S (malleability) and small-order keys.
                verifier.verify(message, signature)
            except (BadSignatureError, NaclValueError, ValueError, TypeError):
                continue
            return signature.hex()
        raise fail

    def _task(self, payload: ClaimPayload, now: datetime) -> TaskRecord:
        if abs(now - payload.timestamp) > timedelta(seconds=self.policy.nonce_ttl_seconds):
            raise InvalidPayloadFieldError("timestamp is outside the accepted window",
                                           field="timestamp")
        try:
            task = self.ledger.task(payload.task_id)
        except HcpError as exc:
            if exc.http_status == 404:
                raise UnknownTaskError(f"no task {payload.task_id!r}",
                                       task_id=payload.task_id) from None
            raise
        if task.status != "active" or task.expires_at <= now:
            raise UnknownTaskError(f"task {task.task_id!r} is closed or expired",
                                   task_id=task.task_id)
        return task

    def _check_nonce(self, payload: ClaimPayload, now: datetime) -> None:
        replay = ReplayDetectedError("nonce already used", nonce=payload.nonce)
        if not self.nonces.claim(payload.nonce, now, self.policy.nonce_ttl_seconds):
            raise replay
        # The fast store forgets after its TTL; the ledger never does.
        if self.ledger.nonce_used(payload.nonce):
            raise replay

    def _extract(self, artifact: bytes) -> tuple[bytes, bytes | None]:
        tmp = Path(tempfile.mkdtemp(prefix="hcp-art-"))
        try:
            safe_extract(artifact, tmp, self.policy.max_artifact_files,
                         self.policy.max_extracted_bytes)
            wasm_path = tmp / WASM_NAME
            if not wasm_path.is_file():
                raise InvalidArtifactError(f"artifact has no top-level {WASM_NAME}")
            hyper_path = tmp / HYPERPARAMETERS_NAME
            hyper = hyper_path.read_bytes() if hyper_path.is_file() else None
            return wasm_path.read_bytes(), hyper
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _dataset(self, task: TaskRecord) -> bytes:
        data = self._dataset_cache.get(task.dataset_hash)
        if data is None:
            data = self.datasets.get(task.dataset_hash)
            if len(self._dataset_cache) > 8:
                self._dataset_cache.clear()
            self._dataset_cache[task.dataset_hash] = data
        return data

    def _limits(self, task: TaskRecord) -> SandboxLimits:
        p = self.policy
        return SandboxLimits(fuel=p.sandbox_fuel, memory_bytes=p.sandbox_memory_bytes,
                             timeout_seconds=min(task.max_training_time_seconds,
                                                 p.sandbox_max_timeout_seconds),
                             max_stdout_bytes=p.sandbox_max_stdout_bytes)

    def _record(self, payload: ClaimPayload, signature: str, task: TaskRecord,
                result: SandboxResult, artifact: bytes, now: datetime,
                started: float) -> ClaimRecord:
        ref = self.artifacts.put(artifact)
        failure, penalize = self._judge(payload, task, result)
        draft = ClaimDraft(
            submission_id=str(uuid.uuid4()), miner_id=payload.miner_id, task_id=task.task_id,
            claimed_score=payload.claimed_score, verified_score=result.score,
            outcome=result.outcome.value, details=failure, artifact_hash=ref,
            artifact_uri=self.artifacts.uri(ref), signature=signature,
            payload_timestamp=payload.timestamp_raw, nonce=payload.nonce, received_at=now,
            verification_seconds=self.clock.monotonic() - started)
        if failure is None:
            return self.ledger.record_verified(draft, task.reward)
        claim = self.ledger.record_rejected(draft, penalize)
        raise VerificationFailedError(failure, details=failure, outcome=result.outcome.value,
                                      submission_id=claim.submission_id,
                                      slashed=claim.slashed, warning=claim.warning)

    def _judge(self, payload: ClaimPayload, task: TaskRecord,
               result: SandboxResult) -> tuple[str | None, Any]:
        base = self.policy.slash_base_bps

        def penalize_as(outcome: SandboxOutcome) -> Any:
            return lambda w, s, stake: penalty_for(outcome, w, s, stake, base)

        if result.outcome is not SandboxOutcome.OK or result.score is None:
            words = _FAILURE_WORDING.get(result.outcome, "Sandbox failure")
            return f"{words}: {result.detail}", penalize_as(result.outcome)
        diff = abs(result.score - payload.claimed_score)
        if diff > self.policy.score_tolerance + 1e-12:
            return ((f"Score mismatch: claimed {payload.claimed_score:g}, sandbox "
                    f"{result.score:g} (tolerance {self.policy.score_tolerance:g})"),
                    penalize_as(SandboxOutcome.OK))
        if result.score < task.performance_threshold:
            # An honest claim that simply falls short costs the miner its quota, not its stake.
            return (f"Score below threshold: {result.score:g} < {task.performance_threshold:g}",
                    lambda w, s, stake: Penalty(False, 0))
        return None, None


