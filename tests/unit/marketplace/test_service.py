"""The marketplace service: lifecycle, the worked example, cancel, disputes, reputation, recovery."""

from __future__ import annotations

import pytest

from hcp.errors import (
    InvalidCidError,
    JobTransitionError,
    OfferUnavailableError,
    PermissionDeniedError,
    ServiceUnavailableError,
    ValidationError,
)
from hcp.marketplace.escrow_backend import ONE_TOKEN, EscrowBackend
from hcp.marketplace.jobs import DisputeOutcome, JobStatus
from hcp.marketplace.offers import OfferSpec
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from tests.unit.marketplace.conftest import ADMIN, CID, ORACLE, PROVIDER, RENTER, ManualClock

PRICE = 10 * ONE_TOKEN


def _offer(service: MarketplaceService, price: int = PRICE) -> str:
    return service.register_offer(PROVIDER, OfferSpec("A100", 8, 64, 500, price, "eu-west")).id


def _funded_job(service: MarketplaceService, ledger: SqlEscrowBackend, seconds: int = 3600) -> str:
    ledger.mint(RENTER.subject, 100 * ONE_TOKEN, "faucet")
    return service.create_job(RENTER, _offer(service), CID, seconds).id


def test_worked_example_through_the_service(service: MarketplaceService, ledger: SqlEscrowBackend,
                                            clock: ManualClock) -> None:
    ledger.mint(RENTER.subject, 10 * ONE_TOKEN, "faucet")
    job = service.create_job(RENTER, _offer(service), CID, 3600)
    assert job.status is JobStatus.CREATED and job.max_cost == 10 * ONE_TOKEN
    assert ledger.locked_for(job.id) == 10 * ONE_TOKEN and ledger.balance_of(RENTER.subject) == 0
    service.accept(PROVIDER, job.id)
    service.start(PROVIDER, job.id)
    clock.advance(2700)
    done = service.complete(PROVIDER, job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.final_cost == 7_500_000_000_000_000_000
    assert done.settlement is not None
    assert done.settlement.to_provider == 7_350_000_000_000_000_000
    assert done.settlement.to_platform == 150_000_000_000_000_000
    assert done.settlement.refunded == 2_500_000_000_000_000_000
    assert ledger.balance_of(RENTER.subject) == 2_500_000_000_000_000_000
    assert not done.escrow_pending


def test_billing_is_capped_by_the_estimate_and_reported_usage(
        service: MarketplaceService, ledger: SqlEscrowBackend, clock: ManualClock) -> None:
    job = _funded_job(service, ledger, 3600)
    service.accept(PROVIDER, job)
    service.start(PROVIDER, job)
    clock.advance(7200)  # ran over: billed at most the estimate
    assert service.complete(PROVIDER, job).final_cost == PRICE
    job2 = service.create_job(RENTER, _offer(service), CID, 3600).id
    service.accept(PROVIDER, job2)
    service.start(PROVIDER, job2)
    clock.advance(3000)
    assert service.complete(PROVIDER, job2, usage_seconds=1800).final_cost == PRICE // 2


def test_cancel_before_start_refunds_everything(service: MarketplaceService, ledger: SqlEscrowBackend) -> None:
    job = _funded_job(service, ledger)
    before = ledger.balance_of(RENTER.subject)
    service.accept(PROVIDER, job)
    out = service.cancel(RENTER, job)
    assert out.status is JobStatus.CANCELLED and out.settlement is not None
    assert out.settlement.refunded == PRICE
    assert ledger.balance_of(RENTER.subject) == before + PRICE
    job2 = service.create_job(RENTER, _offer(service), CID, 3600).id
    service.accept(PROVIDER, job2)
    service.start(PROVIDER, job2)
    with pytest.raises(JobTransitionError):
        service.cancel(RENTER, job2)


@pytest.mark.parametrize("outcome,provider_gets,renter_back", [
    (DisputeOutcome.PROVIDER_FAULT, 0, PRICE),
    (DisputeOutcome.USER_FAULT, PRICE - PRICE * 2 // 100, 0),
    (DisputeOutcome.INCONCLUSIVE, PRICE // 2 - (PRICE // 2) * 2 // 100, PRICE // 2),
])
def test_dispute_outcomes(service: MarketplaceService, ledger: SqlEscrowBackend, outcome: DisputeOutcome,
                          provider_gets: int, renter_back: int) -> None:
    job = _funded_job(service, ledger)
    renter_before = ledger.balance_of(RENTER.subject)
    service.accept(PROVIDER, job)
    service.start(PROVIDER, job)
    assert service.dispute(RENTER, job, "container never came up").status is JobStatus.DISPUTED
    with pytest.raises(PermissionDeniedError):
        service.resolve(RENTER, job, outcome)
    with pytest.raises(JobTransitionError):
        service.complete(PROVIDER, job)
    out = service.resolve(ORACLE, job, outcome)
    assert out.status is JobStatus.COMPLETED and out.resolution == outcome.value
    assert ledger.balance_of(PROVIDER.subject) == provider_gets
    assert ledger.balance_of(RENTER.subject) == renter_before + renter_back
    assert ledger.escrowed_total() == 0
    rep = service.reputation(PROVIDER.subject)
    if outcome is DisputeOutcome.PROVIDER_FAULT:
        # one job, not completed (-300), disputed (-100), penalised (-50, as on chain)
        assert rep.penalty == 50 and rep.score == 1000 - 300 - 100 - 50
    elif outcome is DisputeOutcome.USER_FAULT:
        assert rep.score == 1000
    with pytest.raises(JobTransitionError):
        service.resolve(ADMIN, job, outcome)
    ledger.verify_books()


def test_offers_carry_the_providers_reputation(service: MarketplaceService, ledger: SqlEscrowBackend) -> None:
    offer = _offer(service)
    service.penalize(ADMIN, PROVIDER.subject, 250)
    assert service.get_offer(offer).reputation == 750
    service.reward(ORACLE, PROVIDER.subject, 50)
    assert service.get_offer(offer).reputation == 800
    rep = service.report_uptime(ORACLE, PROVIDER.subject, 50, 100)
    assert rep.terms_bps["uptime"] == 5000 and rep.score == 600
    with pytest.raises(PermissionDeniedError):
        service.penalize(PROVIDER, PROVIDER.subject, 1)


def test_refusals(service: MarketplaceService, ledger: SqlEscrowBackend) -> None:
    offer = _offer(service)
    ledger.mint(RENTER.subject, PRICE, "f")
    with pytest.raises(InvalidCidError):
        service.create_job(RENTER, offer, "not-a-cid", 3600)
    with pytest.raises(ValidationError):
        service.create_job(RENTER, offer, CID, 0)
    with pytest.raises(PermissionDeniedError):
        service.create_job(PROVIDER, offer, CID, 60)
    job = service.create_job(RENTER, offer, CID, 3600).id
    with pytest.raises(PermissionDeniedError):
        service.accept(type(PROVIDER)("someone-else", PROVIDER.role), job)
    with pytest.raises(JobTransitionError):
        service.start(PROVIDER, job)
    service.update_offer(PROVIDER, offer, available=False)
    with pytest.raises(OfferUnavailableError):
        service.create_job(RENTER, offer, CID, 60)


def test_a_lock_the_ledger_refuses_cancels_the_job(service: MarketplaceService, ledger: SqlEscrowBackend) -> None:
    offer = _offer(service)
    from hcp.errors import InsufficientFundsError

    with pytest.raises(InsufficientFundsError):
        service.create_job(RENTER, offer, CID, 3600)
    (job,) = service.list_jobs(RENTER)
    assert job.status is JobStatus.CANCELLED and not job.escrow_pending
    assert ledger.escrowed_total() == 0


class FlakyEscrow:
    """Forwards to a real ledger, but the next ``fail_next`` calls die after the ledger committed
    (the worst case: money moved, the caller never heard)."""

    def __init__(self, inner: EscrowBackend) -> None:
        self.inner = inner
        self.platform_account = inner.platform_account
        self.fail_next = 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        fn = getattr(self.inner, name)

        def call(*a, **k):  # type: ignore[no-untyped-def]
            out = fn(*a, **k)
            if self.fail_next and name in {"lock", "release", "refund", "split"}:
                self.fail_next -= 1
                raise ServiceUnavailableError("ledger connection lost")
            return out

        return call


def test_crash_between_status_and_ledger_is_repaired_once(engine, settings, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    ledger = SqlEscrowBackend(engine)
    flaky = FlakyEscrow(ledger)
    svc = MarketplaceService(engine, flaky, settings, clock)  # type: ignore[arg-type]
    ledger.mint(RENTER.subject, PRICE, "f")
    offer = svc.register_offer(PROVIDER, OfferSpec("H100", 16, 80, 1000, PRICE, "us")).id
    job = svc.create_job(RENTER, offer, CID, 3600).id
    svc.accept(PROVIDER, job)
    svc.start(PROVIDER, job)
    clock.advance(2700)
    flaky.fail_next = 1
    with pytest.raises(ServiceUnavailableError):
        svc.complete(PROVIDER, job)
    # A new process over the same store: the owed step is replayed, and money moved once.
    fresh = MarketplaceService(engine, SqlEscrowBackend(engine), settings, clock)
    assert fresh.get_job(ADMIN, job).escrow_pending
    assert fresh.reconcile() == 1
    assert fresh.reconcile() == 0
    assert ledger.balance_of(PROVIDER.subject) == 7_350_000_000_000_000_000
    assert ledger.balance_of(RENTER.subject) == 2_500_000_000_000_000_000
    assert not fresh.get_job(RENTER, job).escrow_pending
    ledger.verify_books()
