"""Request bodies and JSON views of the marketplace API.

Token amounts travel as decimal strings in responses (18-decimal units exceed JavaScript's
safe integers) and are accepted as JSON integers or decimal strings in requests.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from hcp.fields import SafeStr, StrictCount, StrictPositive, TokenAmount
from hcp.marketplace.escrow_backend import Settlement
from hcp.marketplace.jobs import DisputeOutcome
from hcp.marketplace.offers import OfferView
from hcp.marketplace.views import JobView, ReputationView

# Token units (uint256) as a JSON integer or a string of ASCII digits: the edge's one rule.
Amount = TokenAmount
# A job's, offer's or instance's id in a path: the service's ids are UUIDs; anything longer or
# stranger is refused at the edge as invalid input, before it reaches a store.
RecordId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OfferIn(_Body):
    gpu_model: SafeStr = Field(min_length=1, max_length=64)
    vcpu: StrictPositive = Field(le=65535)
    memory_gb: StrictPositive = Field(le=1 << 20)
    storage_gb: StrictPositive = Field(le=1 << 30)
    price_per_hour: Amount
    location: SafeStr = Field(min_length=1, max_length=64)
    available: StrictBool = True


class OfferPatch(_Body):
    available: StrictBool | None = None
    price_per_hour: Amount | None = None


class JobIn(_Body):
    offer_id: SafeStr = Field(min_length=1, max_length=36)
    image_cid: SafeStr = Field(min_length=1, max_length=128)
    estimated_seconds: StrictPositive


class CompleteIn(_Body):
    usage_seconds: StrictCount | None = None


class DisputeIn(_Body):
    reason: SafeStr = Field(min_length=1, max_length=1000)


class ResolveIn(_Body):
    outcome: DisputeOutcome


class MintIn(_Body):
    account: SafeStr = Field(min_length=1, max_length=128)
    amount: Amount
    op_id: SafeStr = Field(min_length=1, max_length=64)


class UptimeIn(_Body):
    up_seconds: StrictCount
    expected_seconds: StrictPositive


class PointsIn(_Body):
    points: StrictPositive = Field(le=1000)


class ChallengeIn(_Body):
    address: SafeStr = Field(min_length=1, max_length=64)
    role: SafeStr = Field(default="renter", max_length=16)


class LoginIn(_Body):
    address: SafeStr = Field(min_length=1, max_length=64)
    nonce: SafeStr = Field(min_length=1, max_length=64)
    signature: SafeStr = Field(min_length=1, max_length=200)


def settlement_json(s: Settlement | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {k: (str(v) if isinstance(v, int) else v) for k, v in asdict(s).items()}


def offer_json(o: OfferView) -> dict[str, Any]:
    d = asdict(o)
    d["price_per_hour"] = str(o.price_per_hour)
    d["created_at"] = o.created_at.isoformat()
    return d


def job_json(j: JobView) -> dict[str, Any]:
    d = {k: v for k, v in asdict(j).items() if k != "settlement"}
    d["status"] = j.status.value
    for k in ("price_per_hour", "max_cost", "final_cost"):
        d[k] = None if d[k] is None else str(d[k])
    for k in ("created_at", "accepted_at", "started_at", "ended_at"):
        d[k] = None if d[k] is None else d[k].isoformat()
    d["settlement"] = settlement_json(j.settlement)
    return d


def reputation_json(r: ReputationView) -> dict[str, Any]:
    return asdict(r)
