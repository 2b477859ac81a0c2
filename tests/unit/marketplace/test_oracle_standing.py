"""A provider the oracle's validators hold SUSPECT (a confirmed failed check) is not offered to
new renters and cannot be rented; clean checks make it HEALTHY and offered again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from hcp.errors import OfferUnavailableError
from hcp.marketplace.escrow_backend import ONE_TOKEN
from hcp.marketplace.offers import OfferSpec, SearchQuery
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from hcp.oracle.escalation import EscalationPolicy, ProviderState
from hcp.oracle.findings import Check, Finding, Outcome
from hcp.oracle.repository import OracleRepository
from hcp.oracle.settings import OracleSettings
from tests.unit.marketplace.conftest import CID, PROVIDER, RENTER, ManualClock

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _finding(outcome: Outcome, n: int) -> Finding:
    return Finding(PROVIDER.subject, Check.POSSESSION, f"possession:r{n}", outcome,
                   ("val-0", "val-1"), (), T0 + timedelta(minutes=n))


def test_a_suspect_provider_is_not_offered_until_it_is_healthy_again(
        engine: Engine, service: MarketplaceService, ledger: SqlEscrowBackend,
        clock: ManualClock) -> None:
    other = type(PROVIDER)("prov-2", PROVIDER.role)
    mine = service.register_offer(PROVIDER, OfferSpec("H100", 8, 64, 500, ONE_TOKEN, "eu")).id
    theirs = service.register_offer(other, OfferSpec("H100", 8, 64, 500, 2 * ONE_TOKEN, "eu")).id
    ledger.mint(RENTER.subject, 100 * ONE_TOKEN, "faucet")

    def offered() -> list[str]:
        return [o.id for o in service.search(SearchQuery(gpu_model="H100")).items]

    assert offered() == [mine, theirs]
    settings = OracleSettings()
    repo, policy = OracleRepository(engine, clock), EscalationPolicy(settings)
    d = policy.step(policy.initial(PROVIDER.subject, T0), _finding(Outcome.TIMEOUT, 0))
    repo.commit_decision(d)
    assert d.after.state is ProviderState.SUSPECT
    assert offered() == [theirs]
    with pytest.raises(OfferUnavailableError, match="oracle"):
        service.create_job(RENTER, mine, CID, 3600)

    standing = d.after
    for n in range(1, settings.clear_after_passes + 1):
        d = policy.step(standing, _finding(Outcome.OK, n))
        repo.commit_decision(d)
        standing = d.after
    assert standing.state is ProviderState.HEALTHY
    assert offered() == [mine, theirs]
    assert service.create_job(RENTER, mine, CID, 3600).offer_id == mine
