"""Request bodies and JSON views of the marketplace API.

Token amounts travel as decimal strings in responses (18-decimal units exceed JavaScript's
safe integers) and are accepted as JSON integers or decimal strings in requests.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from hcp.marketplace.escrow_backend import Settlement
from hcp.marketplace.jobs import DisputeOutcome
from hcp.marketplace.offers import OfferView
from hcp.marketplace.views import JobView, ReputationView


def _amount(v: Any) -> Any:
    if isinstance(v, str) and v.isdigit():
        return int(v)
    if isinstance(v, bool) or (not isinstance(v, int) and not isinstance(v, str)):
        raise ValueError("an amount is an integer (or a decimal string) in smallest units")  # noqa: TRY004 (pydantic)
    return v


Amount = Annotated[int, BeforeValidator(_amount), Field(ge=0, lt=2**256)]


class OfferIn(BaseModel):
    gpu_model: str = Field(min_length=1, max_length=64)
    vcpu: int = Field(gt=0, le=65535)
    memory_gb: int = Field(gt=0)
    storage_gb: int = Field(gt=0)
    price_per_hour: Amount
    location: str = Field(min_length=1, max_length=64)
    available: bool = True


class OfferPatch(BaseModel):
    available: bool | None = None
    price_per_hour: Amount | None = None


class JobIn(BaseModel):
    offer_id: str = Field(min_length=1, max_length=36)
    image_cid: str = Field(min_length=1, max_length=128)
    estimated_seconds: int = Field(gt=0)


class CompleteIn(BaseModel):
    usage_seconds: int | None = Field(default=None, ge=0)


class DisputeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


class ResolveIn(BaseModel):
    outcome: DisputeOutcome


class MintIn(BaseModel):
    account: str = Field(min_length=1, max_length=128)
    amount: Amount
    op_id: str = Field(min_length=1, max_length=64)


class UptimeIn(BaseModel):
    up_seconds: int = Field(ge=0)
    expected_seconds: int = Field(gt=0)


class PointsIn(BaseModel):
    points: int = Field(gt=0, le=1000)


class ChallengeIn(BaseModel):
    address: str = Field(min_length=1, max_length=64)
    role: str = Field(default="renter", max_length=16)


class LoginIn(BaseModel):
    address: str = Field(min_length=1, max_length=64)
    nonce: str = Field(min_length=1, max_length=64)
    signature: str = Field(min_length=1, max_length=200)


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
