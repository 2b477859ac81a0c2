"""Typed read models the marketplace service returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hcp.marketplace import models as m
from hcp.marketplace.escrow_backend import Settlement
from hcp.marketplace.jobs import JobStatus


@dataclass(frozen=True)
class JobView:
    id: str
    offer_id: str
    renter: str
    provider: str
    image_cid: str
    price_per_hour: int
    estimated_seconds: int
    max_cost: int
    status: JobStatus
    created_at: datetime
    accepted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    final_cost: int | None
    resolution: str | None
    escrow_pending: bool
    settlement: Settlement | None = None

    @classmethod
    def of(cls, row: m.Job, settlement: Settlement | None = None) -> JobView:
        return cls(id=row.id, offer_id=row.offer_id, renter=row.renter, provider=row.provider,
                   image_cid=row.image_cid, price_per_hour=row.price_per_hour,
                   estimated_seconds=row.estimated_seconds, max_cost=row.max_cost,
                   status=JobStatus(row.status), created_at=row.created_at, accepted_at=row.accepted_at,
                   started_at=row.started_at, ended_at=row.ended_at, final_cost=row.final_cost,
                   resolution=row.resolution, escrow_pending=row.pending_escrow is not None,
                   settlement=settlement)


@dataclass(frozen=True)
class ReputationView:
    provider: str
    score: int
    total_jobs: int
    completed_jobs: int
    disputes: int
    penalty: int
    bonus: int
    terms_bps: dict[str, Any]
