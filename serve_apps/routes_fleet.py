"""Fleet and economics read API (admins only), switch history, billing and platform revenue."""

# No `from __future__ import annotations`: FastAPI resolves the local `Client` alias at runtime.

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query

from hcp.auth.tokens import Principal
from hcp.config import Settings
from hcp.fleet.facility import FacilityReport
from hcp.fleet.modes import GpuMode
from hcp.observability.logs import current_correlation_id
from serve_apps.access import Action, require
from serve_apps.schemas import (
    Billing,
    ModeChange,
    Resources,
    Revenue,
    SwitchPage,
    SwitchResult,
    error_responses,
)
from serve_apps.services import ApiServices
from serve_apps.snapshot import SnapshotCache

_DEVICE = r"^[A-Za-z0-9_.:-]{1,64}$"


def resources_view(
    typed: list[FacilityReport],
    facility: str | None = None,
    mode: GpuMode | None = None,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """Flatten facility reports into facilities, GPUs and ASICs, filtered by facility and mode."""
    facilities, gpus, asics = [], [], []
    for rep in (r.to_dict() for r in typed):
        if facility is not None and rep.get("facility") != facility:
            continue
        facilities.append({k: v for k, v in rep.items() if k not in ("gpus", "asics")})
        # A GPU whose actor is restarting is listed with availability "unavailable".
        for g in rep.get("gpus", []):
            if mode is None or g.get("mode") == mode.value:
                gpus.append({**g, "facility": g.get("facility") or rep.get("facility")})
        for asic_id, asic_mode in sorted(rep.get("asics", {}).items()):
            if mode is None or asic_mode == mode.value:
                asics.append({"id": asic_id, "facility": rep.get("facility"), "mode": asic_mode})
    return {
        "facilities": facilities,
        "gpus": gpus,
        "asics": asics,
        "modes": [m.value for m in GpuMode],
        "as_of": as_of,
    }


def fleet_snapshots(
    services: ApiServices, settings: Settings
) -> tuple[SnapshotCache[list[FacilityReport]], SnapshotCache[dict[str, Any]]]:
    """Replica-local snapshots of the facility reports and the optimizer's economics."""
    max_age = settings.api.snapshot_max_age_seconds
    fresh = min(settings.api.snapshot_fresh_seconds, max_age)
    return (
        SnapshotCache(services.fleet.facility_reports, fresh, max_age, services.clock),
        SnapshotCache(services.economics.profitability, fresh, max_age, services.clock),
    )


def fleet_router(
    services: ApiServices, client: Callable[..., Any], settings: Settings
) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["fleet"])
    Client = Annotated[Principal, Depends(client)]
    reports, economics = fleet_snapshots(services, settings)

    @r.get(
        "/resources",
        response_model=Resources,
        responses=error_responses(403, 422, 503),
        summary="GPUs, ASICs, facilities, modes and telemetry",
    )
    async def resources(
        principal: Client,
        facility: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        mode: Annotated[GpuMode | None, Query(description="Only devices in this mode.")] = None,
    ) -> dict[str, Any]:
        require(principal, Action.VIEW_RESOURCES)
        snap = await reports.get()
        return resources_view(snap.value, facility, mode, snap.as_of)

    @r.post(
        "/resources/devices/{device_id}/mode",
        response_model=SwitchResult,
        responses=error_responses(403, 404, 409, 422, 503),
        summary="Switch one GPU or ASIC",
    )
    async def set_mode(
        device_id: Annotated[str, Path(pattern=_DEVICE)],
        change: Annotated[ModeChange, Body()],
        principal: Client,
    ) -> dict[str, Any]:
        require(principal, Action.MODIFY_RESOURCES)
        target = GpuMode.parse(change.mode)
        try:
            # The switch is committed with this request's id (X-Request-ID), so the event log
            # and the caller's logs name the same request.
            result = await services.fleet.set_mode(
                device_id, target.value, f"api:{principal.subject}: {change.reason}"[:200],
                current_correlation_id(),
            )
            return result.to_dict()
        finally:
            # The admin who switched a device sees the switch on the next read.
            reports.invalidate()
            economics.invalidate()

    @r.get(
        "/switches",
        response_model=SwitchPage,
        responses=error_responses(403, 422, 503),
        summary="Mode-switch history with latencies, newest first",
    )
    async def switches(
        principal: Client,
        device: Annotated[
            str | None, Query(pattern=_DEVICE, description="Only this device's switches.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[
            str | None,
            Query(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of the last page."),
        ] = None,
    ) -> dict[str, Any]:
        require(principal, Action.VIEW_RESOURCES)
        before = int(cursor) if cursor else None
        rows = await asyncio.to_thread(services.switch_log.switches, device, limit + 1, before)
        more = len(rows) > limit
        items = rows[:limit]
        return {"items": items, "next_cursor": str(items[-1]["id"]) if more and items else None}

    @r.get(
        "/profitability",
        response_model=dict[str, Any],
        responses=error_responses(403, 503),
        summary="Current per-device, per-mode economics (USD/hour) from the optimizer",
    )
    async def profitability(principal: Client) -> dict[str, Any]:
        require(principal, Action.VIEW_RESOURCES)
        return (await economics.get()).value

    @r.get(
        "/revenue",
        response_model=Revenue,
        responses=error_responses(403, 503),
        summary="Platform revenue: metered workloads and inference over all customers",
    )
    async def revenue(principal: Client) -> dict[str, Any]:
        require(principal, Action.VIEW_PLATFORM_REVENUE)
        workloads = await services.workloads.usage(None)
        inference = await asyncio.to_thread(services.usage.totals, None)
        return {"workloads": workloads, "inference": inference}

    @r.get(
        "/billing",
        response_model=Billing,
        responses=error_responses(403, 422, 503),
        summary="Own billing (admins: any owner's with `owner`)",
    )
    async def billing(
        principal: Client,
        owner: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    ) -> dict[str, Any]:
        require(principal, Action.VIEW_OWN_BILLING)
        who = owner or principal.subject
        if who != principal.subject:
            # Someone else's bill is platform revenue detail: admins only.
            require(principal, Action.VIEW_PLATFORM_REVENUE)
        workloads = await services.workloads.usage(who)
        inference = await asyncio.to_thread(services.usage.totals, who)
        return {"owner": who, "workloads": workloads, "inference": inference}

    return r
