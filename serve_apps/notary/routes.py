"""ML-Chain v6 endpoints (``/api/v1/task``, ``/api/v1/submit``) and the notary's admin API.

Thin: every decision is in ``hcp.notary``; routes parse the wire format and raise typed
errors, which ``serve_apps.errors`` maps to the documented answers.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from hcp.auth.tokens import Principal, Role, TokenService
from hcp.config import Settings
from hcp.errors import (
    BadSubmissionError,
    InvalidPayloadFieldError,
    NoActiveTaskError,
    PayloadTooLargeError,
    ValidationError,
)
from hcp.fields import AwareDatetime, SafeStr, StrictCount, StrictFloat
from hcp.notary.ledger import TaskRecord
from hcp.notary.pipeline import Submission
from hcp.notary.service import NotaryService
from hcp.notary.storage import parse_hash_ref
from serve_apps.auth import optional_principal_dependency, require_roles
from serve_apps.ratelimit import RequestLimits, client_address, rate_guard, standalone_limits

log = logging.getLogger(__name__)

_FORM_OVERHEAD = 64 * 1024  # multipart boundaries and part headers on top of the two parts
_ClaimId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


class MinerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    miner_id: SafeStr = Field(min_length=1, max_length=64)
    public_key: SafeStr = Field(min_length=1, max_length=128,
                                description="Ed25519 public key, 64 hex characters")
    stake: StrictCount


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    metric: SafeStr = Field(min_length=1, max_length=64)
    performance_threshold: StrictFloat
    dataset_hash: SafeStr = Field(min_length=1, max_length=128)
    max_training_time_seconds: StrictFloat = Field(gt=0, le=7 * 86400)
    expires_at: AwareDatetime
    reward: StrictCount


def _task_view(t: TaskRecord) -> dict[str, Any]:
    return {"task_id": t.task_id, "performance_threshold": t.performance_threshold,
            "metric": t.metric, "dataset_hash": t.dataset_hash,
            "max_training_time_seconds": t.max_training_time_seconds,
            "expires_at": t.expires_at.isoformat(), "reward": t.reward}


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body exceeds {limit} bytes", limit=limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes", limit=limit)
    return bytes(body)


async def _parse_form(request: Request, body: bytes, max_part: int) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise BadSubmissionError("the body must be multipart/form-data")

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    buffered = Request(request.scope, replay)
    try:
        form = await buffered.form(max_files=4, max_fields=8, max_part_size=max_part)
    except StarletteHTTPException as exc:
        raise BadSubmissionError(f"malformed multipart body: {exc.detail}") from exc
    except Exception as exc:  # the multipart parser raises several internal types
        raise BadSubmissionError(f"malformed multipart body: {exc}") from exc
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key in out:
            raise BadSubmissionError(f"form field {key!r} appears more than once", field=key)
        out[key] = await value.read() if isinstance(value, UploadFile) else value
    return out


def router(settings: Settings, limits: RequestLimits | None = None,
           service: NotaryService | None = None, tokens: TokenService | None = None) -> APIRouter:
    """The notary's routes. ``service`` defaults to one built from ``settings``; ``limits`` to
    counters in its store (the platform ingress passes its own, shared by every route)."""
    if service is None:
        from hcp.notary.service import build_service
        from hcp.store.db import engine_for

        service = build_service(settings, engine_for(settings.resolved_database_url))
    svc = service
    tokens = tokens or TokenService.from_settings(settings)
    limits = limits or standalone_limits(settings, svc.ledger.engine)
    admin = require_roles(tokens, Role.ADMIN)
    reader = optional_principal_dependency(tokens)
    body_limit = settings.notary.max_artifact_bytes + settings.notary.max_payload_bytes \
        + _FORM_OVERHEAD
    # Every route, anonymous reads included, is counted by the one limiter.
    api = APIRouter(prefix="/api/v1", tags=["notary"],
                    dependencies=[Depends(rate_guard(tokens, limits))])
    adm = APIRouter(prefix="/admin", tags=["notary-admin"], dependencies=[Depends(admin)])

    @api.get("/task")
    def get_task() -> dict[str, Any]:
        task = svc.tasks.get(svc.clock.now())
        if task is None:
            raise NoActiveTaskError("no active task")
        return _task_view(task)

    @api.get("/datasets/{dataset_hash}")
    def get_dataset(dataset_hash: str) -> Response:
        parse_hash_ref(dataset_hash)
        return Response(svc.datasets.get(dataset_hash), media_type="text/csv")

    @api.post("/submit", status_code=202)
    async def submit(request: Request) -> dict[str, Any]:
        client = client_address(request)
        await run_in_threadpool(svc.pipeline.admit, client)
        body = await _read_capped(request, body_limit)
        form = await _parse_form(request, body, settings.notary.max_payload_bytes + 1024)
        payload = form.get("payload")
        signature = form.get("signature") or request.headers.get("x-signature")
        artifact = form.get("artifact")
        if isinstance(signature, bytes):
            signature = signature.decode("ascii", errors="replace")
        if artifact is not None and not isinstance(artifact, bytes):
            raise InvalidPayloadFieldError("'artifact' must be a file part", field="artifact")
        sub = Submission(payload=payload, signature=signature, artifact=artifact, client=client,
                         admitted=True)
        verdict = await run_in_threadpool(svc.pipeline.submit, sub)
        return verdict.to_response()

    @api.get("/claims/{submission_id}")
    def get_claim(submission_id: _ClaimId,
                  who: Principal | None = Depends(reader)) -> dict[str, Any]:
        claim = svc.ledger.claim(submission_id)
        # The signature, nonce and artifact location are the miner's and the operator's:
        # anyone else sees the verdict only (a replayed signature must not be one GET away).
        if who is not None and (who.is_admin or (who.role is Role.MINER
                                                 and who.subject == claim.miner_id)):
            return claim.to_dict()
        return claim.public_dict()

    # --- admin ---------------------------------------------------------------------------
    @adm.post("/miners", status_code=201)
    def register_miner(body: MinerIn) -> dict[str, Any]:
        return svc.ledger.register_miner(body.miner_id, body.public_key, body.stake,
                                         svc.clock.now()).to_dict()

    @adm.get("/miners")
    def list_miners() -> list[dict[str, Any]]:
        return [m.to_dict() for m in svc.ledger.list_miners()]

    @adm.get("/miners/{miner_id}")
    def get_miner(miner_id: str) -> dict[str, Any]:
        return svc.ledger.miner(miner_id).to_dict()

    @adm.post("/miners/{miner_id}/revoke")
    def revoke_miner(miner_id: str) -> dict[str, Any]:
        return svc.ledger.revoke_miner(miner_id, svc.clock.now()).to_dict()

    @adm.post("/datasets", status_code=201)
    async def upload_dataset(request: Request) -> dict[str, Any]:
        body = await _read_capped(request, settings.notary.max_extracted_bytes + _FORM_OVERHEAD)
        form = await _parse_form(request, body, 1024)
        data = form.get("file")
        if not isinstance(data, bytes):
            raise BadSubmissionError("multipart file 'file' is required", field="file")
        ref = await run_in_threadpool(svc.datasets.put, data)
        return {"dataset_hash": ref, "size_bytes": len(data)}

    @adm.post("/tasks", status_code=201)
    def create_task(body: TaskIn) -> dict[str, Any]:
        parse_hash_ref(body.dataset_hash)
        if not svc.datasets.has(body.dataset_hash):
            raise ValidationError(f"unknown dataset {body.dataset_hash}; upload it first",
                                  field="dataset_hash")
        if body.expires_at.tzinfo is None:
            raise ValidationError("expires_at must carry a time zone", field="expires_at")
        now = svc.clock.now()
        task = svc.ledger.create_task(TaskRecord(
            task_id=body.task_id, metric=body.metric,
            performance_threshold=body.performance_threshold, dataset_hash=body.dataset_hash,
            max_training_time_seconds=body.max_training_time_seconds, reward=body.reward,
            created_at=now, expires_at=body.expires_at, status="active"))
        svc.tasks.invalidate()
        return task.to_dict()

    @adm.get("/tasks")
    def list_tasks() -> list[dict[str, Any]]:
        return [t.to_dict() for t in svc.ledger.list_tasks()]

    @adm.post("/tasks/{task_id}/close")
    def close_task(task_id: str) -> dict[str, Any]:
        task = svc.ledger.close_task(task_id)
        svc.tasks.invalidate()
        return task.to_dict()

    @adm.get("/claims")
    def list_claims(miner_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        return [c.to_dict() for c in svc.ledger.list_claims(miner_id, limit)]

    api.include_router(adm)
    return api


