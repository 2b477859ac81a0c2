"""MarketplaceService: offers, the job lifecycle, disputes and reputation over one escrow ledger.

Money moves only through the ``EscrowBackend`` (SQL or chain), which is idempotent by job.
Each lifecycle step commits the job's new status together with the escrow step it still owes
(``pending_escrow``) in one transaction, then performs that step and clears it. A crash in
between leaves the debt recorded; ``reconcile()`` (run at start) replays it, and the
backend's idempotency makes the replay move money at most once.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, null, select, update
from sqlalchemy.orm import Session, sessionmaker

from hcp.auth.tokens import Principal, Role
from hcp.clock import Clock, SystemClock
from hcp.config import Settings
from hcp.errors import (
    ConflictError,
    HcpError,
    JobNotFoundError,
    OfferNotFoundError,
    OfferUnavailableError,
    PermissionDeniedError,
    StoreError,
    ValidationError,
)
from hcp.marketplace import models as m
from hcp.marketplace.cid import validate_cid
from hcp.marketplace.escrow_backend import BPS, EscrowBackend, Settlement, cost_for
from hcp.marketplace.jobs import DisputeOutcome, JobStatus, check_transition
from hcp.marketplace.offers import (
    OfferSpec,
    OfferView,
    Page,
    SearchQuery,
    provider_offerable,
    search,
)
from hcp.marketplace.reputation_book import ReputationBook
from hcp.marketplace.sql_ledger import check_account_name
from hcp.marketplace.views import JobView, ReputationView
from hcp.store.db import transaction

log = logging.getLogger(__name__)


class MarketplaceService:
    def __init__(self, engine: Engine, escrow: EscrowBackend, settings: Settings,
                 clock: Clock | None = None) -> None:
        self.engine = engine
        self.escrow = escrow
        self.settings = settings
        self.clock = clock or SystemClock()
        self._session = sessionmaker(engine, expire_on_commit=False)
        self._lock = threading.RLock()  # see SqlEscrowBackend: one writer per process
        self.book = ReputationBook(settings.marketplace.response_max_seconds, self.clock)

    # -- offers ---------------------------------------------------------------------------
    def register_offer(self, provider: Principal, spec: OfferSpec) -> OfferView:
        self._require(provider, Role.PROVIDER)
        check_account_name(provider.subject)
        with self._tx() as s:
            score = self.book.row(s, provider.subject).score
            row = m.Offer(id=str(uuid.uuid4()), provider=provider.subject, gpu_model=spec.gpu_model,
                          vcpu=spec.vcpu, memory_gb=spec.memory_gb, storage_gb=spec.storage_gb,
                          price_per_hour=spec.price_per_hour, location=spec.location,
                          available=spec.available, reputation=score, created_at=self.clock.now())
            s.add(row)
            s.flush()
            return OfferView.of(row)

    def update_offer(self, provider: Principal, offer_id: str, available: bool | None = None,
                     price_per_hour: int | None = None) -> OfferView:
        with self._tx() as s:
            row = s.get(m.Offer, offer_id, with_for_update=True)
            if row is None:
                raise OfferNotFoundError(f"no offer {offer_id}", offer_id=offer_id)
            if row.provider != provider.subject and not provider.is_admin:
                raise PermissionDeniedError("only the offer's provider may change it")
            if price_per_hour is not None:
                OfferSpec(row.gpu_model, row.vcpu, row.memory_gb, row.storage_gb, price_per_hour,
                          row.location)
                row.price_per_hour = price_per_hour
            if available is not None:
                row.available = available
            return OfferView.of(row)

    def get_offer(self, offer_id: str) -> OfferView:
        with self._tx() as s:
            row = s.get(m.Offer, offer_id)
            if row is None:
                raise OfferNotFoundError(f"no offer {offer_id}", offer_id=offer_id)
            return OfferView.of(row)

    def search(self, query: SearchQuery) -> Page:
        with self._tx() as s:
            return search(s, query)

    # -- jobs -----------------------------------------------------------------------------
    def create_job(self, renter: Principal, offer_id: str, image_cid: str,
                   estimated_seconds: int,
                   attach: Callable[[Session, str], None] | None = None) -> JobView:
        """``attach(session, job_id)`` writes rows that belong with the job (an instance's
        container spec) in the job's own transaction, so no agent ever sees the job without them."""
        self._require(renter, Role.CUSTOMER)
        check_account_name(renter.subject)
        cid = validate_cid(image_cid)
        if (isinstance(estimated_seconds, bool) or not isinstance(estimated_seconds, int)
                or not 0 < estimated_seconds <= self.settings.marketplace.max_job_seconds):
            raise ValidationError(
                f"estimated_seconds must be in 1..{self.settings.marketplace.max_job_seconds}",
                estimated_seconds=estimated_seconds)
        with self._tx() as s:
            offer = s.get(m.Offer, offer_id)
            if offer is None:
                raise OfferNotFoundError(f"no offer {offer_id}", offer_id=offer_id)
            if not offer.available:
                raise OfferUnavailableError("the offer is not available", offer_id=offer_id)
            if not provider_offerable(s, offer.provider):
                raise OfferUnavailableError("the provider is under review by the oracle",
                                            offer_id=offer_id)
            if offer.provider == renter.subject:
                raise ValidationError("a provider cannot rent its own offer")
            max_cost = cost_for(offer.price_per_hour, estimated_seconds)
            if max_cost <= 0:
                raise ValidationError("the job's maximum cost rounds to zero; rent for longer")
            job = m.Job(id=str(uuid.uuid4()), offer_id=offer.id, renter=renter.subject,
                        provider=offer.provider, image_cid=cid, price_per_hour=offer.price_per_hour,
                        estimated_seconds=estimated_seconds, max_cost=max_cost,
                        status=JobStatus.CREATED.value, created_at=self.clock.now(),
                        pending_escrow={"op": "lock", "amount": str(max_cost)}, version=0)
            s.add(job)
            s.flush()
            self._event(s, job, None, JobStatus.CREATED, renter)
            if attach is not None:
                attach(s, job.id)
        return self._drive(job.id)

    def accept(self, provider: Principal, job_id: str) -> JobView:
        def step(s: Session, job: m.Job) -> None:
            self._require_party(provider, job.provider)
            self._require_settled_lock(job)
            self._advance(s, job, JobStatus.ACCEPTED, provider)
            job.accepted_at = self.clock.now()
            stats = self.book.row(s, job.provider)
            stats.accepted_jobs += 1
            stats.response_seconds_total += max(0, int((job.accepted_at - job.created_at).total_seconds()))
            self.book.rescore(s, stats)

        return self._step(job_id, step)

    def start(self, provider: Principal, job_id: str) -> JobView:
        def step(s: Session, job: m.Job) -> None:
            self._require_party(provider, job.provider)
            self._advance(s, job, JobStatus.RUNNING, provider)
            job.started_at = self.clock.now()

        return self._step(job_id, step)

    def complete(self, provider: Principal, job_id: str, usage_seconds: int | None = None) -> JobView:
        """Bill min(time since start, estimate, reported usage): the provider may bill less, never more."""
        if usage_seconds is not None and (not isinstance(usage_seconds, int) or usage_seconds < 0):
            raise ValidationError("usage_seconds must be a non-negative integer")

        def step(s: Session, job: m.Job) -> None:
            self._require_party(provider, job.provider)
            self._settle_run(s, job, provider, usage_seconds)

        return self._step(job_id, step)

    def stop(self, who: Principal, job_id: str) -> JobView:
        """The renter ends a rental now. Before it started, everything is refunded (as
        ``cancel``); while it runs, the time used so far is paid (98/2) and the rest refunded,
        exactly as a completion at this moment. The provider's agent sees the job ended and
        stops the container."""
        def step(s: Session, job: m.Job) -> None:
            self._require_party(who, job.renter, job.provider)
            if JobStatus(job.status) is not JobStatus.RUNNING:
                self._require_settled_lock(job)
                self._advance(s, job, JobStatus.CANCELLED, who, {"stopped": True})
                job.ended_at = self.clock.now()
                job.final_cost = 0
                job.pending_escrow = {"op": "refund"}
                return
            self._settle_run(s, job, who, None, {"stopped": True})

        return self._step(job_id, step)

    def _settle_run(self, s: Session, job: m.Job, who: Principal, usage_seconds: int | None,
                    detail: dict[str, Any] | None = None) -> None:
        self._advance(s, job, JobStatus.COMPLETED, who, detail)
        job.ended_at = self.clock.now()
        assert job.started_at is not None
        elapsed = max(0, int((job.ended_at - job.started_at).total_seconds()))
        billed = min(elapsed, job.estimated_seconds)
        if usage_seconds is not None:
            billed = min(billed, usage_seconds)
        job.final_cost = cost_for(job.price_per_hour, billed)
        job.pending_escrow = {"op": "release", "actual_cost": str(job.final_cost)}
        stats = self.book.row(s, job.provider)
        stats.total_jobs += 1
        stats.completed_jobs += 1
        self.book.rescore(s, stats)

    def cancel(self, who: Principal, job_id: str) -> JobView:
        def step(s: Session, job: m.Job) -> None:
            self._require_party(who, job.renter, job.provider)
            self._require_settled_lock(job)
            self._advance(s, job, JobStatus.CANCELLED, who)
            job.ended_at = self.clock.now()
            job.final_cost = 0
            job.pending_escrow = {"op": "refund"}

        return self._step(job_id, step)

    def dispute(self, renter: Principal, job_id: str, reason: str) -> JobView:
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 1000:
            raise ValidationError("a dispute needs a reason of 1..1000 characters")

        def step(s: Session, job: m.Job) -> None:
            self._require_party(renter, job.renter)
            frm = JobStatus(job.status)
            self._advance(s, job, JobStatus.DISPUTED, renter, {"reason": reason})
            s.add(m.Dispute(job_id=job.id, initiator=renter.subject, reason=reason, from_status=frm.value,
                            opened_at=self.clock.now()))

        return self._step(job_id, step)

    def resolve(self, oracle: Principal, job_id: str, outcome: DisputeOutcome,
                evidence_sha256: str | None = None) -> JobView:
        """``evidence_sha256``: the validators' evidence bundle the resolution rests on
        (``hcp.oracle.disputes``), recorded with the resolution's event."""
        self._require_oracle(oracle)
        outcome = DisputeOutcome(outcome)
        detail = {"outcome": outcome.value}
        if evidence_sha256 is not None:
            detail["evidence_sha256"] = evidence_sha256

        def step(s: Session, job: m.Job) -> None:
            self._advance(s, job, JobStatus.RESOLVED, oracle, detail)
            self._advance(s, job, JobStatus.COMPLETED, oracle)
            dispute = s.get(m.Dispute, job.id)
            assert dispute is not None
            dispute.outcome, dispute.resolved_by, dispute.resolved_at = (
                outcome.value, oracle.subject, self.clock.now())
            job.ended_at = self.clock.now()
            job.resolution = outcome.value
            # What the split pays (the service never releases part of a lock early), recorded
            # as the contract's resolveDispute records it.
            job.final_cost = job.max_cost * outcome.provider_bps // BPS
            job.pending_escrow = {"op": "split", "provider_bps": outcome.provider_bps}
            stats = self.book.row(s, job.provider)
            stats.total_jobs += 1
            if outcome is DisputeOutcome.USER_FAULT:
                stats.completed_jobs += 1
            else:
                stats.disputes += 1
            if outcome is DisputeOutcome.PROVIDER_FAULT:
                stats.penalty += self.settings.marketplace.dispute_penalty
            self.book.rescore(s, stats)

        return self._step(job_id, step)

    def get_job(self, who: Principal, job_id: str) -> JobView:
        with self._tx() as s:
            job = self._job(s, job_id, lock=False)
            self._require_party(who, job.renter, job.provider, oracle_ok=True)
            return JobView.of(job)

    def list_jobs(self, who: Principal, status: JobStatus | None = None, limit: int = 100) -> list[JobView]:
        with self._tx() as s:
            stmt = select(m.Job).order_by(m.Job.created_at.desc(), m.Job.id).limit(max(1, min(limit, 500)))
            if not (who.is_admin or self._is_oracle(who)):
                stmt = stmt.where((m.Job.renter == who.subject) | (m.Job.provider == who.subject))
            if status is not None:
                stmt = stmt.where(m.Job.status == JobStatus(status).value)
            return [JobView.of(j) for j in s.scalars(stmt)]

    # -- reputation -----------------------------------------------------------------------
    def report_uptime(self, oracle: Principal, provider: str, up_seconds: int, expected_seconds: int) -> ReputationView:
        self._require_oracle(oracle)
        if not (isinstance(up_seconds, int) and isinstance(expected_seconds, int)
                and 0 <= up_seconds <= expected_seconds and expected_seconds > 0):
            raise ValidationError("need 0 <= up_seconds <= expected_seconds, expected_seconds > 0")
        return self._adjust(provider, uptime=(up_seconds, expected_seconds))

    def penalize(self, oracle: Principal, provider: str, points: int) -> ReputationView:
        self._require_oracle(oracle)
        return self._adjust(provider, penalty=self._points(points))

    def reward(self, oracle: Principal, provider: str, points: int) -> ReputationView:
        self._require_oracle(oracle)
        return self._adjust(provider, bonus=self._points(points))

    def reputation(self, provider: str) -> ReputationView:
        with self._tx() as s:
            return self.book.view(self.book.row(s, provider))

    # -- recovery -------------------------------------------------------------------------
    def reconcile(self) -> int:
        """Replay every escrow step a crash left owed; returns how many were replayed."""
        with self._tx() as s:
            ids = list(s.scalars(select(m.Job.id).where(m.Job.pending_escrow.is_not(None))))
        for job_id in ids:
            try:
                self._drive(job_id)
            except HcpError as exc:
                log.warning("reconcile of job %s refused: %s", job_id, exc.detail)
        return len(ids)

    # -- internals ------------------------------------------------------------------------
    def _step(self, job_id: str, fn: Any) -> JobView:
        with self._tx() as s:
            job = self._job(s, job_id, lock=True)
            fn(s, job)
        return self._drive(job_id)

    def _drive(self, job_id: str) -> JobView:
        """Perform the job's owed escrow step (idempotent), then clear it."""
        with self._tx() as s:
            job = self._job(s, job_id, lock=False)
            pending, version = job.pending_escrow, job.version
        if pending is None:
            return JobView.of(job)
        settlement: Settlement | None = None
        op = pending["op"]
        try:
            if op == "lock":
                self.escrow.lock(job.id, job.renter, job.provider, int(pending["amount"]))
            elif op == "release":
                settlement = self.escrow.release(job.id, int(pending["actual_cost"]))
            elif op == "refund":
                settlement = self.escrow.refund(job.id)
            elif op == "split":
                settlement = self.escrow.split(job.id, int(pending["provider_bps"]))
            else:  # pragma: no cover - written only by this module
                raise StoreError(f"unknown pending escrow step {op!r}")
        except HcpError as exc:
            if op == "lock" and exc.http_status < 500:
                # The ledger refused the lock (e.g. insufficient funds): the job never existed for money.
                self._abandon(job_id, version, exc)
            raise
        with self._tx() as s:
            # Clear only the step we performed (a concurrent transition may have set a new one).
            s.execute(update(m.Job).where(m.Job.id == job_id, m.Job.version == version)
                      .values(pending_escrow=null()))
            job = self._job(s, job_id, lock=False)
            return JobView.of(job, settlement)

    def _abandon(self, job_id: str, version: int, exc: HcpError) -> None:
        with self._tx() as s:
            job = self._job(s, job_id, lock=True)
            if job.version != version or job.status != JobStatus.CREATED.value:
                return
            job.status = JobStatus.CANCELLED.value
            job.pending_escrow = None
            job.final_cost = 0
            job.ended_at = self.clock.now()
            job.version += 1
            s.add(m.JobEvent(job_id=job.id, seq=job.version, from_status=JobStatus.CREATED.value,
                             to_status=JobStatus.CANCELLED.value, actor="escrow", at=self.clock.now(),
                             detail={"refused": exc.code}))

    def _advance(self, s: Session, job: m.Job, target: JobStatus, who: Principal,
                 detail: dict[str, Any] | None = None) -> None:
        current = JobStatus(job.status)
        check_transition(current, target, job.id)
        job.status = target.value
        job.version += 1
        s.add(m.JobEvent(job_id=job.id, seq=job.version, from_status=current.value, to_status=target.value,
                         actor=who.subject, at=self.clock.now(), detail=detail))

    def _event(self, s: Session, job: m.Job, frm: JobStatus | None, to: JobStatus, who: Principal) -> None:
        s.add(m.JobEvent(job_id=job.id, seq=job.version, from_status=frm.value if frm else None,
                         to_status=to.value, actor=who.subject, at=self.clock.now()))

    @staticmethod
    def _require_settled_lock(job: m.Job) -> None:
        if job.pending_escrow is not None and job.pending_escrow.get("op") == "lock":
            raise ConflictError("the job's escrow lock is not confirmed yet", job_id=job.id)

    def _job(self, s: Session, job_id: str, lock: bool) -> m.Job:
        job = s.get(m.Job, job_id, with_for_update=lock) if isinstance(job_id, str) else None
        if job is None:
            raise JobNotFoundError(f"no job {job_id}", job_id=job_id)
        return job

    def _adjust(self, provider: str, uptime: tuple[int, int] | None = None, penalty: int = 0,
                bonus: int = 0) -> ReputationView:
        check_account_name(provider)
        with self._tx() as s:
            row = self.book.row(s, provider)
            if uptime is not None:
                row.uptime_seconds += uptime[0]
                row.expected_seconds += uptime[1]
            row.penalty += penalty
            row.bonus += bonus
            self.book.rescore(s, row)
            return self.book.view(row)

    @staticmethod
    def _points(points: int) -> int:
        if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= 1000:
            raise ValidationError("points must be an integer in 1..1000")
        return points

    def _is_oracle(self, who: Principal) -> bool:
        return who.is_admin or who.subject in self.settings.marketplace.oracles

    def _require_oracle(self, who: Principal) -> None:
        if not self._is_oracle(who):
            raise PermissionDeniedError("only an oracle (admin or a configured oracle subject) may do this")

    @staticmethod
    def _require(who: Principal, role: Role) -> None:
        if who.role is not role and not who.is_admin:
            raise PermissionDeniedError(f"role {who.role.value!r} may not do this", required=[role.value])

    def _require_party(self, who: Principal, *parties: str, oracle_ok: bool = False) -> None:
        if who.is_admin or who.subject in parties or (oracle_ok and self._is_oracle(who)):
            return
        raise PermissionDeniedError("not a party to this job")

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._lock, transaction(self._session, "marketplace store") as s:
            yield s
