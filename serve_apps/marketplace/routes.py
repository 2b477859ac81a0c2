"""FastAPI router of the marketplace: a thin layer over MarketplaceService and WalletLogin.

Authorization: renters hold the ``customer`` role, providers ``provider``, operators ``admin``;
dispute resolution and reputation reports need admin or a subject listed in
``HCP_MARKETPLACE_ORACLES``. Party checks (only this job's provider may start it...) live in
the service, so every caller gets them.

(No ``from __future__ import annotations`` here: FastAPI must resolve the dependency aliases
defined inside ``router()`` at decoration time.)
"""


from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from hcp.auth.tokens import Principal, Role, TokenService
from hcp.clock import SystemClock
from hcp.config import Settings
from hcp.errors import PermissionDeniedError
from hcp.marketplace.backends import build_escrow_backend
from hcp.marketplace.jobs import JobStatus
from hcp.marketplace.offers import OfferSpec, SearchQuery, SortOrder
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.wallet import WalletLogin
from hcp.oracle.repository import OracleRepository
from serve_apps.auth import principal_dependency, require_roles
from serve_apps.errors import ERROR_SCHEMA
from serve_apps.marketplace import schemas as sch
from serve_apps.ratelimit import RequestLimits, rate_guard, standalone_limits

PREFIX = "/api/v1/marketplace"
_ERR = {"content": {"application/json": {"schema": ERROR_SCHEMA}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or bad token", **_ERR}, 403: {"description": "role or party refused", **_ERR},
    404: {"description": "unknown offer or job", **_ERR}, 409: {"description": "state conflict", **_ERR},
    422: {"description": "invalid input", **_ERR}, 429: {"description": "rate limited", **_ERR},
    503: {"description": "store or chain down", **_ERR},
}


@dataclass
class MarketplaceDeps:
    service: MarketplaceService
    wallet: WalletLogin
    tokens: TokenService
    engine: Any = None


def build_deps(settings: Settings) -> MarketplaceDeps:
    """Store, ledger and services from settings; replays escrow steps a crash left owed."""
    from hcp.store.db import engine_for

    engine = engine_for(settings.resolved_database_url)
    tokens = TokenService.from_settings(settings)
    service = MarketplaceService(engine, build_escrow_backend(settings, engine), settings)
    service.reconcile()
    return MarketplaceDeps(service=service, wallet=WalletLogin(engine, tokens, settings), tokens=tokens,
                           engine=engine)


def router(settings: Settings, limits: RequestLimits | None = None,
           deps: MarketplaceDeps | None = None) -> APIRouter:
    d = deps or build_deps(settings)
    svc, tokens = d.service, d.tokens
    evidence = OracleRepository(d.engine if d.engine is not None else svc.engine, SystemClock())
    limits = limits or standalone_limits(settings, d.engine if d.engine is not None
                                         else svc.engine)
    anyone = principal_dependency(tokens)
    provider = require_roles(tokens, Role.PROVIDER, Role.ADMIN)
    renter = require_roles(tokens, Role.CUSTOMER, Role.ADMIN)
    admin = require_roles(tokens, Role.ADMIN)
    Anyone = Annotated[Principal, Depends(anyone)]
    AsProvider = Annotated[Principal, Depends(provider)]
    AsRenter = Annotated[Principal, Depends(renter)]
    AsAdmin = Annotated[Principal, Depends(admin)]
    # Every route, wallet logins included, is counted by the one limiter.
    r = APIRouter(prefix=PREFIX, tags=["marketplace"], responses=_RESPONSES,
                  dependencies=[Depends(rate_guard(tokens, limits))])

    # -- wallet login -----------------------------------------------------------------
    @r.post("/auth/wallet/challenge", status_code=201)
    def wallet_challenge(body: sch.ChallengeIn) -> dict[str, Any]:
        c = d.wallet.challenge(body.address, body.role)
        return {"address": c.address, "role": c.role.value, "nonce": c.nonce, "message": c.message,
                "expires_at": c.expires_at.isoformat()}

    @r.post("/auth/wallet/login")
    def wallet_login(body: sch.LoginIn) -> dict[str, Any]:
        sess = d.wallet.login(body.address, body.nonce, body.signature)
        return {"token": sess.token, "token_type": "bearer", "subject": sess.subject,
                "role": sess.role.value}

    # -- offers -------------------------------------------------------------------------
    @r.post("/offers", status_code=201)
    def create_offer(body: sch.OfferIn, who: AsProvider) -> dict[str, Any]:
        spec = OfferSpec(**body.model_dump())
        return sch.offer_json(svc.register_offer(who, spec))

    @r.patch("/offers/{offer_id}")
    def patch_offer(offer_id: sch.RecordId, body: sch.OfferPatch, who: AsProvider) -> dict[str, Any]:
        return sch.offer_json(svc.update_offer(who, offer_id, body.available, body.price_per_hour))

    @r.get("/offers/{offer_id}")
    def get_offer(offer_id: sch.RecordId, _: Anyone) -> dict[str, Any]:
        return sch.offer_json(svc.get_offer(offer_id))

    @r.get("/offers")
    def search_offers(
        _: Anyone,
        gpu_model: str | None = Query(default=None, max_length=64),
        min_price: sch.Amount | None = None,
        max_price: sch.Amount | None = None,
        min_reputation: int | None = Query(default=None, ge=0, le=1000),
        location: str | None = Query(default=None, max_length=64),
        available_only: bool = True,
        sort: SortOrder = SortOrder.PRICE_ASC,
        limit: int = Query(default=50, ge=1, le=200),
        cursor: str | None = Query(default=None, max_length=500),
    ) -> dict[str, Any]:
        page = svc.search(SearchQuery(gpu_model=gpu_model, min_price=min_price, max_price=max_price,
                                      min_reputation=min_reputation, location=location,
                                      available_only=available_only, sort=sort, limit=limit,
                                      cursor=cursor))
        return {"items": [sch.offer_json(o) for o in page.items], "next_cursor": page.next_cursor}

    # -- jobs ---------------------------------------------------------------------------
    @r.post("/jobs", status_code=201)
    def create_job(body: sch.JobIn, who: AsRenter) -> dict[str, Any]:
        return sch.job_json(svc.create_job(who, body.offer_id, body.image_cid, body.estimated_seconds))

    @r.get("/jobs")
    def list_jobs(who: Anyone, status: JobStatus | None = None,
                  limit: int = Query(default=100, ge=1, le=500)) -> dict[str, Any]:
        return {"items": [sch.job_json(j) for j in svc.list_jobs(who, status, limit)]}

    @r.get("/jobs/{job_id}")
    def get_job(job_id: sch.RecordId, who: Anyone) -> dict[str, Any]:
        return sch.job_json(svc.get_job(who, job_id))

    @r.post("/jobs/{job_id}/accept")
    def accept_job(job_id: sch.RecordId, who: AsProvider) -> dict[str, Any]:
        return sch.job_json(svc.accept(who, job_id))

    @r.post("/jobs/{job_id}/start")
    def start_job(job_id: sch.RecordId, who: AsProvider) -> dict[str, Any]:
        return sch.job_json(svc.start(who, job_id))

    @r.post("/jobs/{job_id}/complete")
    def complete_job(job_id: sch.RecordId, who: AsProvider,
                     body: sch.CompleteIn | None = None) -> dict[str, Any]:
        usage = body.usage_seconds if body else None
        return sch.job_json(svc.complete(who, job_id, usage))

    @r.post("/jobs/{job_id}/cancel")
    def cancel_job(job_id: sch.RecordId, who: Anyone) -> dict[str, Any]:
        return sch.job_json(svc.cancel(who, job_id))

    @r.post("/jobs/{job_id}/dispute")
    def dispute_job(job_id: sch.RecordId, body: sch.DisputeIn, who: AsRenter) -> dict[str, Any]:
        return sch.job_json(svc.dispute(who, job_id, body.reason))

    @r.post("/jobs/{job_id}/resolve")
    def resolve_job(job_id: sch.RecordId, body: sch.ResolveIn, who: Anyone) -> dict[str, Any]:
        # The validators' evidence bundle, when they kept one, is what the resolution cites.
        signed = evidence.evidence(job_id)
        sha = signed.bundle.sha256 if signed is not None else None
        out = sch.job_json(svc.resolve(who, job_id, body.outcome, evidence_sha256=sha))
        return {**out, "evidence_sha256": sha}

    # -- reputation ---------------------------------------------------------------------
    @r.get("/reputation/{provider_id}")
    def get_reputation(provider_id: str, _: Anyone) -> dict[str, Any]:
        return sch.reputation_json(svc.reputation(provider_id))

    @r.post("/reputation/{provider_id}/uptime")
    def report_uptime(provider_id: str, body: sch.UptimeIn, who: Anyone) -> dict[str, Any]:
        return sch.reputation_json(svc.report_uptime(who, provider_id, body.up_seconds, body.expected_seconds))

    @r.post("/reputation/{provider_id}/penalty")
    def penalize(provider_id: str, body: sch.PointsIn, who: Anyone) -> dict[str, Any]:
        return sch.reputation_json(svc.penalize(who, provider_id, body.points))

    @r.post("/reputation/{provider_id}/reward")
    def reward(provider_id: str, body: sch.PointsIn, who: Anyone) -> dict[str, Any]:
        return sch.reputation_json(svc.reward(who, provider_id, body.points))

    # -- balances -----------------------------------------------------------------------
    @r.get("/balances/me")
    def my_balance(who: Anyone) -> dict[str, Any]:
        return {"account": who.subject, "balance": str(svc.escrow.balance_of(who.subject))}

    @r.get("/balances/{account}")
    def balance(account: str, who: Anyone) -> dict[str, Any]:
        if account != who.subject and not who.is_admin:
            raise PermissionDeniedError("only admins may read other accounts' balances")
        return {"account": account, "balance": str(svc.escrow.balance_of(account))}

    @r.get("/ledger")
    def ledger(_: AsAdmin) -> dict[str, Any]:
        esc = svc.escrow
        accounts = esc.accounts()
        return {"total_supply": str(esc.total_supply()), "escrowed": str(esc.escrowed_total()),
                "staked": str(esc.staked_total()), "platform_account": esc.platform_account,
                "balances": {a: str(esc.balance_of(a)) for a in accounts}}

    @r.post("/ledger/mint", status_code=201)
    def mint(body: sch.MintIn, _: AsAdmin) -> dict[str, Any]:
        svc.escrow.mint(body.account, body.amount, body.op_id)
        return {"account": body.account, "balance": str(svc.escrow.balance_of(body.account))}

    return r
