"""The marketplace's metrics, read from the books and the job log as the ledger actor does."""

from __future__ import annotations

from sqlalchemy import Engine

from hcp.marketplace.escrow_backend import ONE_TOKEN, split_payment
from hcp.marketplace.offers import OfferSpec
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from hcp.observability.marketplace import MarketplaceRecorder
from hcp.observability.sink import PrometheusSink
from tests.unit.marketplace.conftest import CID, PROVIDER, RENTER, ManualClock

PRICE = 10 * ONE_TOKEN


def _books(ledger: SqlEscrowBackend) -> tuple[int, int]:
    supply, escrowed, staked = ledger.total_supply(), ledger.escrowed_total(), ledger.staked_total()
    balances = sum(ledger.balance_of(a) for a in ledger.accounts())
    return escrowed, supply - balances - escrowed - staked


def test_jobs_are_counted_once_from_the_log_and_the_books_balance(
        engine: Engine, service: MarketplaceService, ledger: SqlEscrowBackend,
        clock: ManualClock) -> None:
    ledger.mint(RENTER.subject, 100 * ONE_TOKEN, "faucet")
    offer = service.register_offer(PROVIDER, OfferSpec("A100", 8, 64, 500, PRICE, "eu-west")).id
    before = service.create_job(RENTER, offer, CID, 3600).id  # made before the recorder starts
    sink = PrometheusSink()
    rec = MarketplaceRecorder(engine, lambda: _books(ledger), "sql", sink)
    rec.record()
    # History is not news: nothing counted, yet every counter is exported (at 0) from here.
    for name in ("jobs_created_total", "jobs_completed_total", "jobs_disputed_total"):
        assert sink.value(name) == 0
    for party in ("provider", "platform", "refund"):
        assert sink.value("hcp_marketplace_settled_amount_total", party=party) == 0
    assert sink.value("hcp_escrow_locked_amount", backend="sql") == PRICE
    assert sink.value("hcp_escrow_conservation_residual", backend="sql") == 0

    job = service.create_job(RENTER, offer, CID, 1800).id
    for j in (job, before):
        service.accept(PROVIDER, j)
        service.start(PROVIDER, j)
    clock.advance(600)
    done = service.complete(PROVIDER, job)
    service.dispute(RENTER, before, "the GPU was not there")
    rec.record()
    rec.record()  # nothing new: nothing counted again
    assert sink.value("jobs_created_total") == 1
    assert sink.value("jobs_completed_total") == 1
    assert sink.value("jobs_disputed_total") == 1
    assert sink.value("hcp_escrow_locked_amount", backend="sql") == PRICE  # the disputed job's lock
    assert sink.value("hcp_escrow_conservation_residual", backend="sql") == 0
    assert sink.value("hcp_provider_reputation_score", provider=PROVIDER.subject) is not None
    # The completed job: 10 minutes of a 10-token hour, 98 % / 2 %, the rest of its lock back.
    # Amounts are floats in Prometheus: each party's is the float of the ledger's integer.
    paid = done.final_cost
    provider, platform = split_payment(paid)
    assert provider + platform == paid and platform == paid * 2 // 100
    assert sink.value("hcp_marketplace_settled_amount_total", party="provider") == float(provider)
    assert sink.value("hcp_marketplace_settled_amount_total", party="platform") == float(platform)
    assert sink.value("hcp_marketplace_settled_amount_total", party="refund") == float(PRICE // 2 - paid)
