"""Metrics history per GPU and per facility (admins only): the last hour, day or 30 days."""

# No `from __future__ import annotations`: FastAPI resolves the local `Client` alias at runtime.

import asyncio
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from hcp.auth.tokens import Principal
from hcp.errors import ServiceUnavailableError
from hcp.observability.history import History, HistoryService, Scope, Window
from serve_apps.access import Action, require
from serve_apps.schemas import MetricsHistory, error_responses

_NAME = r"^[A-Za-z0-9_.:-]{1,64}$"


def history_view(h: History) -> dict[str, Any]:
    return {"scope": h.scope.value, "subject": h.subject, "window": h.window.value,
            "step_seconds": h.step_seconds, "start": h.start, "end": h.end,
            "source": h.source.value, "points": [asdict(p) for p in h.points]}


def metrics_router(history: HistoryService | None, client: Callable[..., Any]) -> APIRouter:
    r = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])
    Client = Annotated[Principal, Depends(client)]
    WindowQ = Annotated[Window, Query(description="1h (per minute), 1d (per 5 min) or 30d (per hour).")]

    async def read(principal: Principal, scope: Scope, subject: str, window: Window) -> dict[str, Any]:
        require(principal, Action.VIEW_RESOURCES)
        if history is None:
            raise ServiceUnavailableError("no metrics history is configured for this API")
        return history_view(await asyncio.to_thread(history.history, scope, subject, window))

    @r.get("/devices/{device_id}", response_model=MetricsHistory,
           responses=error_responses(403, 404, 422, 503),
           summary="A GPU's power, temperature, utilization and hashrate over a window")
    async def device(device_id: Annotated[str, Path(pattern=_NAME)], principal: Client,
                     window: WindowQ = Window.HOUR) -> dict[str, Any]:
        return await read(principal, Scope.DEVICE, device_id, window)

    @r.get("/facilities/{facility}", response_model=MetricsHistory,
           responses=error_responses(403, 404, 422, 503),
           summary="A facility's GPUs together (power summed, temperature at its peak) over a window")
    async def facility(facility: Annotated[str, Path(pattern=_NAME)], principal: Client,
                       window: WindowQ = Window.HOUR) -> dict[str, Any]:
        return await read(principal, Scope.FACILITY, facility, window)

    return r
