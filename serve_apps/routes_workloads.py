"""``/api/v1/workloads``: submit, list, read and terminate workloads, per the RBAC matrix."""

# No `from __future__ import annotations`: FastAPI resolves the local `Client` alias at runtime.

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from hcp.auth.tokens import Principal
from hcp.errors import ServiceUnavailableError, WorkloadNotFoundError
from hcp.workloads.types import WorkloadSpec, WorkloadState, WorkloadType
from serve_apps.access import Action, may_access_workload, may_see_all_workloads, require
from serve_apps.schemas import WorkloadLogs, WorkloadPage, WorkloadView, error_responses
from serve_apps.services import ApiServices

_ID = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="Workload id."),
]


def _hidden(workload_id: str) -> WorkloadNotFoundError:
    # Another customer's workload is answered exactly like a missing one: ids do not leak.
    return WorkloadNotFoundError(f"no workload {workload_id!r}", workload_id=workload_id)


def workloads_router(services: ApiServices, client: Callable[..., Any]) -> APIRouter:
    r = APIRouter(prefix="/api/v1/workloads", tags=["workloads"])
    Client = Annotated[Principal, Depends(client)]
    wl = services.workloads

    @r.post(
        "",
        status_code=201,
        response_model=WorkloadView,
        responses={
            **error_responses(403, 409, 422, 503),
            200: {"model": WorkloadView, "description": "A retry: the workload this "
                  "`Idempotency-Key` already created (header `Idempotent-Replayed: true`)."},
        },
        summary="Submit a workload",
    )
    async def submit(
        spec: WorkloadSpec,
        principal: Client,
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(
                min_length=1,
                max_length=200,
                description="Any unique string per workload: a retry with the same key and "
                "body returns the first submission's workload instead of a second one.",
            ),
        ] = None,
    ) -> dict[str, Any]:
        require(principal, Action.SUBMIT_WORKLOAD)
        view = await wl.submit(principal.subject, spec, idempotency_key)
        if view.pop("replayed", False):
            response.status_code = 200
            response.headers["Idempotent-Replayed"] = "true"
        return view

    @r.get(
        "",
        response_model=WorkloadPage,
        responses=error_responses(403, 422, 503),
        summary="List workloads (customers: their own; admins: all or one owner's)",
    )
    async def list_workloads(
        principal: Client,
        state: Annotated[
            WorkloadState | None, Query(description="Only workloads in this state.")
        ] = None,
        type: Annotated[
            WorkloadType | None, Query(description="Only workloads of this type.")
        ] = None,
        owner: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=200,
                description="Admins: only this owner's. Customers: must be themselves.",
            ),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[
            str | None,
            Query(min_length=1, max_length=200, description="`next_cursor` of the previous page."),
        ] = None,
    ) -> dict[str, Any]:
        require(principal, Action.VIEW_OWN_WORKLOADS)
        if may_see_all_workloads(principal):
            scope = owner
        else:
            if owner is not None and owner != principal.subject:
                require(principal, Action.VIEW_ALL_WORKLOADS)
            scope = principal.subject
        return await wl.list(
            scope, state.value if state else None, type.value if type else None, limit, cursor
        )

    @r.get(
        "/{workload_id}",
        response_model=WorkloadView,
        responses=error_responses(403, 404, 422, 503),
        summary="One workload",
    )
    async def get_workload(workload_id: _ID, principal: Client) -> dict[str, Any]:
        require(principal, Action.VIEW_OWN_WORKLOADS)
        view = await wl.get(workload_id)
        if not may_access_workload(principal, view["owner"]):
            raise _hidden(workload_id)
        return view

    @r.get(
        "/{workload_id}/logs",
        response_model=WorkloadLogs,
        responses=error_responses(403, 404, 422, 503),
        summary="A container workload's output (stdout and stderr, in order; kept after it ends)",
    )
    async def workload_logs(
        workload_id: _ID,
        principal: Client,
        after: Annotated[int, Query(ge=-1, le=2**62, description="Lines after this seq.")] = -1,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    ) -> dict[str, Any]:
        require(principal, Action.VIEW_OWN_WORKLOADS)
        view = await wl.get(workload_id)
        if not may_access_workload(principal, view["owner"]):
            raise _hidden(workload_id)
        if services.run_logs is None:
            raise ServiceUnavailableError("workload output is not served by this API")
        lines = await asyncio.to_thread(services.run_logs.read_logs, workload_id, after, limit)
        items = [{"seq": ln.seq, "ts_ns": ln.ts_ns, "stream": ln.stream, "text": ln.text}
                 for ln in lines]
        return {"items": items, "next_after": items[-1]["seq"] if items else after}

    @r.delete(
        "/{workload_id}",
        response_model=WorkloadView,
        responses=error_responses(403, 404, 409, 422, 503),
        summary="Terminate a workload",
    )
    async def cancel(workload_id: _ID, principal: Client) -> dict[str, Any]:
        require(principal, Action.TERMINATE_OWN_WORKLOAD)
        view = await wl.get(workload_id)
        if not may_access_workload(principal, view["owner"], terminate=True):
            raise _hidden(workload_id)
        return await wl.cancel(workload_id)

    return r
