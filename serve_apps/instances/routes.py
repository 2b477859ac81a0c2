"""``/api/v1/gpus``, ``/api/v1/instances`` (renters) and ``/api/v1/agent`` (provider agents):
thin routes over ``MarketplaceService`` and the agent's ``SqlRunStore``.

Who sees what: a renter sees only her own instances (another's answers as a missing one,
``instance_not_found``, so ids do not leak); the job's provider and admins see it too.
Instances are created by renters (customer role) and admins; agent routes need the provider
role, and a provider reaches only the runs of its own jobs.

(No ``from __future__ import annotations``: FastAPI resolves the aliases defined inside
``router()`` at decoration time.)
"""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from hcp.agent.messages import RunRecord
from hcp.agent.store import SqlRunStore, instance_writer
from hcp.auth.tokens import Principal, Role, TokenService
from hcp.clock import Clock, SystemClock
from hcp.config import Settings
from hcp.errors import (
    InstanceNotFoundError,
    JobNotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from hcp.marketplace.jobs import JobStatus
from hcp.marketplace.offers import SearchQuery, SortOrder
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.views import JobView
from serve_apps.auth import principal_dependency, require_roles
from serve_apps.errors import ERROR_SCHEMA
from serve_apps.instances import schemas as sch
from serve_apps.marketplace.schemas import Amount, RecordId, job_json
from serve_apps.ratelimit import RequestLimits, rate_guard, standalone_limits

_ERR = {"content": {"application/json": {"schema": ERROR_SCHEMA}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or bad token", **_ERR}, 403: {"description": "role refused", **_ERR},
    404: {"description": "unknown GPU or instance", **_ERR},
    409: {"description": "state conflict", **_ERR}, 422: {"description": "invalid input", **_ERR},
    429: {"description": "rate limited", **_ERR}, 503: {"description": "store down", **_ERR},
}
OPEN = (JobStatus.CREATED, JobStatus.ACCEPTED, JobStatus.RUNNING)


@dataclass
class InstancesDeps:
    market: MarketplaceService
    runs: SqlRunStore
    tokens: TokenService
    clock: Clock


def build_deps(settings: Settings) -> InstancesDeps:
    from serve_apps.marketplace.routes import build_deps as marketplace_deps

    m = marketplace_deps(settings)
    return InstancesDeps(m.service, SqlRunStore(m.service.engine), m.tokens, SystemClock())


def _hidden(instance_id: str) -> InstanceNotFoundError:
    return InstanceNotFoundError(f"no instance {instance_id!r}", instance_id=instance_id)


def router(settings: Settings, limits: RequestLimits | None = None,
           deps: InstancesDeps | None = None) -> APIRouter:
    d = deps or build_deps(settings)
    svc, runs = d.market, d.runs
    limits = limits or standalone_limits(settings, svc.engine)
    anyone = principal_dependency(d.tokens)
    Anyone = Annotated[Principal, Depends(anyone)]
    AsRenter = Annotated[Principal, Depends(require_roles(d.tokens, Role.CUSTOMER, Role.ADMIN))]
    AsProvider = Annotated[Principal, Depends(require_roles(d.tokens, Role.PROVIDER, Role.ADMIN))]
    r = APIRouter(tags=["instances"], responses=_RESPONSES,
                  dependencies=[Depends(rate_guard(d.tokens, limits))])

    def visible_job(who: Principal, instance_id: str) -> JobView:
        try:
            job = svc.get_job(who, instance_id)
        except (JobNotFoundError, PermissionDeniedError):
            raise _hidden(instance_id) from None
        if not (who.is_admin or who.subject in (job.renter, job.provider)):
            raise _hidden(instance_id)  # an oracle may read jobs, not watch instances
        return job

    def view(job: JobView) -> dict[str, Any]:
        return sch.instance_json(job, runs.instance_spec(job.id), runs.get_run(job.id))

    # -- GPUs (the marketplace's offers, by the rental document's name) --------------------
    @r.get("/api/v1/gpus", summary="Rentable GPUs")
    def list_gpus(
        _: Anyone,
        gpu_model: str | None = Query(default=None, max_length=64),
        max_price: Amount | None = None,
        min_reputation: int | None = Query(default=None, ge=0, le=1000),
        location: str | None = Query(default=None, max_length=64),
        sort: SortOrder = SortOrder.PRICE_ASC,
        limit: int = Query(default=50, ge=1, le=200),
        cursor: str | None = Query(default=None, max_length=500),
    ) -> dict[str, Any]:
        page = svc.search(SearchQuery(gpu_model=gpu_model, max_price=max_price,
                                      min_reputation=min_reputation, location=location,
                                      available_only=True, sort=sort, limit=limit, cursor=cursor))
        return {"items": [sch.gpu_json(o) for o in page.items], "next_cursor": page.next_cursor}

    @r.get("/api/v1/gpus/{gpu_id}", summary="One rentable GPU")
    def get_gpu(gpu_id: RecordId, _: Anyone) -> dict[str, Any]:
        return sch.gpu_json(svc.get_offer(gpu_id))

    # -- instances --------------------------------------------------------------------------
    @r.post("/api/v1/instances", status_code=201, summary="Rent a GPU: run an image by CID")
    def create_instance(body: sch.InstanceIn, who: AsRenter) -> dict[str, Any]:
        spec = body.spec()
        job = svc.create_job(who, body.gpu_id, body.image_cid, body.max_duration_seconds,
                             attach=instance_writer(who.subject, spec, d.clock.now()))
        return sch.instance_json(job, spec, None)

    @r.get("/api/v1/instances", summary="Your instances (newest first)")
    def list_instances(who: Anyone, status: JobStatus | None = None,
                       limit: int = Query(default=50, ge=1, le=500)) -> dict[str, Any]:
        jobs = [j for j in svc.list_jobs(who, status, limit)
                if who.is_admin or who.subject in (j.renter, j.provider)]
        return {"items": [view(j) for j in jobs]}

    @r.get("/api/v1/instances/{instance_id}", summary="An instance: its job and its container")
    def get_instance(instance_id: RecordId, who: Anyone) -> dict[str, Any]:
        return view(visible_job(who, instance_id))

    @r.delete("/api/v1/instances/{instance_id}",
              summary="Stop now: pay for the time used, the rest is refunded")
    def stop_instance(instance_id: RecordId, who: AsRenter) -> dict[str, Any]:
        job = visible_job(who, instance_id)
        if job.renter != who.subject and not who.is_admin:
            raise _hidden(instance_id)
        return view(svc.stop(who, instance_id))

    # -- provider agents ----------------------------------------------------------------------
    def own_run(who: Principal, job_id: str) -> JobView:
        try:
            job = svc.get_job(who, job_id)
        except (JobNotFoundError, PermissionDeniedError):
            raise _hidden(job_id) from None
        if job.provider != who.subject and not who.is_admin:
            raise _hidden(job_id)
        return job

    @r.get("/api/v1/agent/jobs", summary="This provider's open jobs with their instance specs")
    def agent_jobs(who: AsProvider) -> dict[str, Any]:
        items = []
        for status in OPEN:
            for j in svc.list_jobs(who, status, 500):
                if j.provider == who.subject:
                    items.append(job_json(j))
        return {"items": items}

    @r.get("/api/v1/agent/runs", summary="This agent's runs (unsettled by default)")
    def agent_runs(who: AsProvider, agent_id: str = Query(min_length=1, max_length=64),
                   unsettled_only: bool = True) -> dict[str, Any]:
        return {"items": [x.to_dict() for x in runs.runs_of(agent_id, unsettled_only)
                          if x.provider == who.subject or who.is_admin]}

    @r.get("/api/v1/agent/runs/{job_id}")
    def agent_get_run(job_id: RecordId, who: AsProvider) -> dict[str, Any]:
        own_run(who, job_id)
        run = runs.get_run(job_id)
        spec = runs.instance_spec(job_id)
        return {"run": None if run is None else run.to_dict(),
                "spec": None if spec is None else {"network": spec.network.value,
                                                   "command": list(spec.command) if spec.command else None,
                                                   "env": dict(spec.env)},
                "last_evidence_at": _iso(runs.last_evidence_at(job_id)),
                "next_metric_seq": runs.next_metric_seq(job_id)}

    @r.put("/api/v1/agent/runs/{job_id}")
    def agent_save_run(job_id: RecordId, body: sch.RunIn, who: AsProvider) -> dict[str, Any]:
        job = own_run(who, job_id)
        record: RunRecord = body.record()
        if record.job_id != job_id or record.provider != job.provider:
            raise ValidationError("the run names another job or provider")
        runs.save_run(record)
        return record.to_dict()

    @r.post("/api/v1/agent/runs/{job_id}/logs")
    def agent_append_logs(job_id: RecordId, body: sch.LogLinesIn, who: AsProvider) -> dict[str, Any]:
        own_run(who, job_id)
        runs.append_logs(job_id, sch.lines_of(body))
        return {"stored": len(body.lines)}

    @r.get("/api/v1/agent/runs/{job_id}/logs/resume")
    def agent_log_resume(job_id: RecordId, who: AsProvider,
                         margin: int = Query(default=5, ge=1, le=600)) -> dict[str, Any]:
        own_run(who, job_id)
        p = runs.log_resume(job_id, margin)
        return {"next_seq": p.next_seq, "since_s": p.since_s, "skip": p.skip}

    @r.post("/api/v1/agent/runs/{job_id}/metrics")
    def agent_append_metrics(job_id: RecordId, body: sch.SamplesIn, who: AsProvider) -> dict[str, Any]:
        own_run(who, job_id)
        runs.append_metrics(job_id, sch.samples_of(body))
        return {"stored": len(body.samples)}

    from serve_apps.instances.streams import stream_routes

    # The sockets count their own connections (a router dependency needs an HTTP request).
    sockets = APIRouter(tags=["instances"])
    stream_routes(sockets, d, limits, settings)
    both = APIRouter()
    both.include_router(r)
    both.include_router(sockets)
    return both


def _iso(v: Any) -> str | None:
    return None if v is None else v.isoformat()
