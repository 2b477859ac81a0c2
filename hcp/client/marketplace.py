"""The marketplace's endpoints (wallet login, offers, jobs, reputation, balances) for the SDK.

Token amounts are integers in the smallest unit. The API sends them as decimal strings (18
decimals exceed JavaScript's safe integers); the models read them back as ``int``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from hcp.client.calls import new_key, params, seg
from hcp.client.models import Page, Result
from hcp.client.transport import Call, Safety, model
from hcp.errors import ValidationError
from hcp.marketplace.jobs import DisputeOutcome, JobStatus

PREFIX = "/api/v1/marketplace"


class SortOrder(StrEnum):
    """The API's offer orders (``hcp.marketplace.offers.SortOrder``'s values; kept equal by a
    test, and not imported from there: that module loads the whole SQL layer)."""

    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    REPUTATION_DESC = "reputation_desc"
    NEWEST = "newest"


class WalletChallenge(Result):
    address: str
    role: str
    nonce: str
    message: str = Field(description="Sign exactly this text (EIP-191 personal_sign).")
    expires_at: datetime


class WalletSession(Result):
    token: str
    token_type: str = "bearer"
    subject: str
    role: str


class Offer(Result):
    id: str
    provider: str
    gpu_model: str
    vcpu: int
    memory_gb: int
    storage_gb: int
    price_per_hour: int
    location: str
    available: bool
    reputation: int
    created_at: datetime


class Settlement(Result):
    job_id: str
    to_provider: int
    to_platform: int
    refunded: int
    remaining_locked: int


class Job(Result):
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
    accepted_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    final_cost: int | None = None
    resolution: str | None = None
    escrow_pending: bool = False
    settlement: Settlement | None = None


class Reputation(Result):
    provider: str
    score: int
    total_jobs: int
    completed_jobs: int
    disputes: int
    penalty: int
    bonus: int
    terms_bps: dict[str, Any] = Field(default_factory=dict)


class Balance(Result):
    account: str
    balance: int


class LedgerView(Result):
    total_supply: int
    escrowed: int
    platform_account: str
    balances: dict[str, int]


def _amount(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{name} is a non-negative integer in smallest units", field=name)
    return value


def _jobs(resp: Any) -> list[Job]:
    return [Job.model_validate(j) for j in resp.json()["items"]]


def challenge(address: str, role: str) -> Call[WalletChallenge]:
    # A second challenge only issues another nonce: harmless to resend.
    return Call("POST", f"{PREFIX}/auth/wallet/challenge", model(WalletChallenge), ok=(201,),
                json={"address": address, "role": role})


def login(address: str, nonce: str, signature: str) -> Call[WalletSession]:
    return Call("POST", f"{PREFIX}/auth/wallet/login", model(WalletSession), safety=Safety.UNSAFE,
                json={"address": address, "nonce": nonce, "signature": signature})


def create_offer(gpu_model: str, vcpu: int, memory_gb: int, storage_gb: int, price_per_hour: int,
                 location: str, available: bool) -> Call[Offer]:
    body = {"gpu_model": gpu_model, "vcpu": vcpu, "memory_gb": memory_gb, "storage_gb": storage_gb,
            "price_per_hour": _amount(price_per_hour, "price_per_hour"), "location": location,
            "available": available}
    return Call("POST", f"{PREFIX}/offers", model(Offer), json=body, safety=Safety.UNSAFE, ok=(201,))


def update_offer(offer_id: str, available: bool | None, price_per_hour: int | None) -> Call[Offer]:
    body: dict[str, Any] = {}
    if available is not None:
        body["available"] = available
    if price_per_hour is not None:
        body["price_per_hour"] = _amount(price_per_hour, "price_per_hour")
    return Call("PATCH", f"{PREFIX}/offers/{seg(offer_id)}", model(Offer), json=body)


def get_offer(offer_id: str) -> Call[Offer]:
    return Call("GET", f"{PREFIX}/offers/{seg(offer_id)}", model(Offer))


def search_offers(gpu_model: str | None = None, min_price: int | None = None,
                  max_price: int | None = None, min_reputation: int | None = None,
                  location: str | None = None, available_only: bool = True,
                  sort: SortOrder | str = SortOrder.PRICE_ASC, limit: int = 50,
                  cursor: str | None = None) -> Call[Page[Offer]]:
    q = params(gpu_model=gpu_model, min_price=min_price, max_price=max_price,
               min_reputation=min_reputation, location=location, sort=SortOrder(sort),
               limit=limit, cursor=cursor)
    q["available_only"] = "true" if available_only else "false"
    return Call("GET", f"{PREFIX}/offers", model(Page[Offer]), params=q)


def create_job(offer_id: str, image_cid: str, estimated_seconds: int) -> Call[Job]:
    return Call("POST", f"{PREFIX}/jobs", model(Job), safety=Safety.UNSAFE, ok=(201,),
                json={"offer_id": offer_id, "image_cid": image_cid,
                      "estimated_seconds": estimated_seconds})


def list_jobs(status: JobStatus | str | None, limit: int) -> Call[list[Job]]:
    return Call("GET", f"{PREFIX}/jobs", _jobs,
                params=params(status=JobStatus(status) if status else None, limit=limit))


def get_job(job_id: str) -> Call[Job]:
    return Call("GET", f"{PREFIX}/jobs/{seg(job_id)}", model(Job))


def job_step(job_id: str, step: str, body: dict[str, Any] | None = None) -> Call[Job]:
    """accept, start, complete, cancel, dispute or resolve: each a state transition."""
    if step not in ("accept", "start", "complete", "cancel", "dispute", "resolve"):
        raise ValidationError(f"unknown job step {step!r}")
    return Call("POST", f"{PREFIX}/jobs/{seg(job_id)}/{step}", model(Job), json=body,
                safety=Safety.UNSAFE)


def complete_job(job_id: str, usage_seconds: int | None) -> Call[Job]:
    return job_step(job_id, "complete", None if usage_seconds is None else {"usage_seconds": usage_seconds})


def dispute_job(job_id: str, reason: str) -> Call[Job]:
    return job_step(job_id, "dispute", {"reason": reason})


def resolve_job(job_id: str, outcome: DisputeOutcome | str) -> Call[Job]:
    return job_step(job_id, "resolve", {"outcome": DisputeOutcome(outcome).value})


def reputation(provider_id: str) -> Call[Reputation]:
    return Call("GET", f"{PREFIX}/reputation/{seg(provider_id)}", model(Reputation))


def report(provider_id: str, kind: str, body: dict[str, Any]) -> Call[Reputation]:
    """uptime, penalty or reward: each adds to the provider's record (not resent)."""
    if kind not in ("uptime", "penalty", "reward"):
        raise ValidationError(f"unknown reputation report {kind!r}")
    return Call("POST", f"{PREFIX}/reputation/{seg(provider_id)}/{kind}", model(Reputation),
                json=body, safety=Safety.UNSAFE)


def balance(account: str | None) -> Call[Balance]:
    path = f"{PREFIX}/balances/me" if account is None else f"{PREFIX}/balances/{seg(account)}"
    return Call("GET", path, model(Balance))


def ledger() -> Call[LedgerView]:
    return Call("GET", f"{PREFIX}/ledger", model(LedgerView))


def mint(account: str, amount: int, op_id: str | None) -> Call[Balance]:
    # op_id makes a mint idempotent on the ledger: a retry cannot mint twice.
    return Call("POST", f"{PREFIX}/ledger/mint", model(Balance), safety=Safety.KEYED, ok=(201,),
                json={"account": account, "amount": _amount(amount, "amount"),
                      "op_id": op_id or new_key()})
