"""``/api/v1/oracle``: what a provider's agent exchanges with the validators over HTTP (a
third-party provider's ``hcp agent`` daemon), and a provider's standing for anyone to read.

Thin routes over ``actors.validator.RayOracle`` (the validator actors) and the oracle's
store. A provider reaches only its own identity: a heartbeat or an answer that names another
provider is refused (``permission_denied``, 403) before any validator sees it. Signed bodies
are parsed by the core's wire readers (bounded, typed refusals); the API's JSON limits apply
first.

(No ``from __future__ import annotations``: FastAPI resolves the aliases defined inside
``router()`` at decoration time.)
"""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from hcp.auth.tokens import Principal, Role, TokenService
from hcp.config import Settings
from hcp.errors import InvalidEvidenceError, NotFoundError, PermissionDeniedError
from hcp.oracle.challenge import ChallengeAnswer
from hcp.oracle.disputes import EvidenceCollector
from hcp.oracle.escalation import Warning
from hcp.oracle.evidence import verify_bundle
from hcp.oracle.heartbeat import Heartbeat
from hcp.oracle.identities import IdentityBook, RoleRegistry
from hcp.oracle.identities import Role as IdentityRole
from hcp.oracle.repository import OracleRepository
from hcp.oracle.signing import Verifier
from serve_apps.auth import principal_dependency, require_roles
from serve_apps.errors import ERROR_SCHEMA
from serve_apps.marketplace.schemas import RecordId
from serve_apps.ratelimit import RequestLimits, rate_guard, standalone_limits

_ERR = {"content": {"application/json": {"schema": ERROR_SCHEMA}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or bad token", **_ERR},
    403: {"description": "role refused, another provider's message, a replay, a bad signature", **_ERR},
    404: {"description": "unknown challenge", **_ERR},
    409: {"description": "identity registered with another role", **_ERR},
    422: {"description": "invalid or stale message", **_ERR},
    429: {"description": "rate limited", **_ERR},
    503: {"description": "validators not running", **_ERR},
}
_WHO = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    public_key: str = Field(pattern=r"^[0-9a-f]{64}$", description="Ed25519 public key, hex.")


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    validator: str = Field(min_length=1, max_length=128, description="Who issued the challenge.")
    answer: dict[str, Any] = Field(description="The signed answer (``ChallengeAnswer`` wire form).")


@dataclass
class OracleDeps:
    tokens: TokenService
    identities: IdentityBook
    port: Any  # hcp.agent.oracle.OraclePort: actors.validator.RayOracle in the platform
    repo: OracleRepository
    evidence: EvidenceCollector
    quorum: int


def build_deps(settings: Settings) -> OracleDeps:
    from actors.validator import RayOracle
    from hcp.clock import SystemClock
    from hcp.store.db import engine_for

    engine = engine_for(settings.resolved_database_url)
    identities = IdentityBook(engine, SystemClock())
    repo = OracleRepository(engine, SystemClock())
    return OracleDeps(TokenService.from_settings(settings), identities,
                      RayOracle(settings, identities), repo, EvidenceCollector(engine, repo),
                      settings.oracle.quorum)


def warning_json(w: Warning) -> dict[str, Any]:
    return {"provider": w.provider_id, "finding_id": w.finding_id, "outcome": w.outcome.value,
            "strikes": w.strikes, "strikes_to_penalty": w.strikes_to_penalty}


def _own(who: Principal, provider_id: str) -> None:
    if not who.is_admin and provider_id != who.subject:
        raise PermissionDeniedError("a provider sends only its own oracle messages",
                                    provider=provider_id)


def router(settings: Settings, limits: RequestLimits | None = None,
           deps: OracleDeps | None = None) -> APIRouter:
    d = deps or build_deps(settings)
    limits = limits or standalone_limits(settings, d.repo.engine)
    Anyone = Annotated[Principal, Depends(principal_dependency(d.tokens))]
    AsProvider = Annotated[Principal, Depends(require_roles(d.tokens, Role.PROVIDER))]
    r = APIRouter(prefix="/api/v1/oracle", tags=["oracle"], responses=_RESPONSES,
                  dependencies=[Depends(rate_guard(d.tokens, limits))])

    @r.post("/keys", status_code=201, summary="Register (or rotate) this provider's key")
    def register_key(body: KeyIn, who: AsProvider) -> dict[str, Any]:
        rec = d.identities.register(who.subject, IdentityRole.PROVIDER,
                                    bytes.fromhex(body.public_key))
        return {"identity": rec.identity, "role": rec.role.value,
                "public_key": rec.public_key.hex(), "registered_at": rec.registered_at.isoformat()}

    @r.get("/validators", summary="The validator set's public keys")
    def validators(_: Anyone) -> dict[str, Any]:
        keys = d.port.validators()
        return {"validators": [{"id": i, "public_key": k.hex()} for i, k in sorted(keys.items())]}

    @r.post("/heartbeats", summary="A signed heartbeat, to every validator")
    def heartbeat(who: AsProvider, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        hb = Heartbeat.from_wire(body)
        _own(who, hb.provider_id)
        return {"accepted_by": d.port.heartbeat(hb)}

    @r.get("/challenges", summary="This provider's challenges in flight, and its warnings")
    def challenges(who: AsProvider) -> dict[str, Any]:
        box = d.port.mailbox(who.subject)
        return {"challenges": [c.to_wire() for c in box.challenges],
                "warnings": [warning_json(w) for w in box.warnings]}

    @r.post("/answers", summary="A signed answer to one challenge")
    def answer(body: AnswerIn, who: AsProvider) -> dict[str, Any]:
        a = ChallengeAnswer.from_wire(body.answer)
        _own(who, a.provider_id)
        d.port.answer(a, body.validator)
        return {"challenge_id": a.challenge_id, "validator": body.validator}

    @r.get("/providers/{provider_id}", summary="A provider's standing and penalties")
    def standing(provider_id: _WHO, _: Anyone) -> dict[str, Any]:
        st = d.repo.standing(provider_id)
        if st is None and d.identities.record(provider_id) is None:
            raise NotFoundError("no provider with this id is watched", provider=provider_id)
        return {"provider": provider_id,
                "state": st.state.value if st is not None else "healthy",
                "offerable": st.offerable if st is not None else True,
                "since": st.since.isoformat() if st is not None else None,
                "penalties": [{"penalty_id": p.penalty_id, "reason": p.reason.value,
                               "points": p.points, "slash_bps": p.slash_bps}
                              for p in d.repo.penalties(provider_id)]}

    @r.get("/evidence/{job_id}", summary="A disputed job's evidence bundle, as the validators "
           "signed it")
    def evidence(job_id: RecordId, who: Anyone) -> dict[str, Any]:
        parties = d.evidence.parties(job_id)
        if parties is None or not (who.is_admin or who.subject in parties):
            raise NotFoundError("no evidence for this job", job_id=job_id)  # ids do not leak
        signed = d.repo.evidence(job_id)
        if signed is None:
            raise NotFoundError("no evidence for this job yet", job_id=job_id)
        validators = Verifier(RoleRegistry(d.identities, IdentityRole.VALIDATOR))
        try:
            verify_bundle(signed, validators, d.quorum)
            verified = True
        except InvalidEvidenceError:
            verified = False
        b = signed.bundle
        return {"job_id": b.job_id, "dispute_id": b.dispute_id, "sha256": b.sha256,
                "verified": verified, "bundle": b.body(),
                "signatures": [{"validator": v, "signature": sig.hex()}
                               for v, sig in signed.signatures]}

    return r
