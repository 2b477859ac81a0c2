"""EscrowLedgerActor on Ray: killed mid-sequence, restarted by Ray, it resumes from the ledger and
never pays twice; the marketplace service runs against it through RemoteEscrow."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray

from actors.escrow import RemoteEscrow, launch_escrow_ledger
from hcp.auth.tokens import Principal, Role
from hcp.config import Settings
from hcp.marketplace.escrow_backend import ONE_TOKEN
from hcp.marketplace.offers import OfferSpec
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from hcp.store.db import engine_for, migrate


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
                    ray_namespace=f"hcp-escrow-{tmp_path.name}", jwt_secret="e" * 40)


def test_killed_ledger_actor_resumes_without_double_paying(ray_session: None, settings: Settings) -> None:
    migrate(engine_for(settings.resolved_database_url))  # what the platform's launch does first
    handle = launch_escrow_ledger(settings)
    assert ray.get(handle.backend_kind.remote()) == "SqlEscrowBackend"
    ray.get(handle.mint.remote("renter", 10 * ONE_TOKEN, "buy-1"))
    ray.get(handle.lock.remote("job-1", "renter", "provider", 10 * ONE_TOKEN))
    first = ray.get(handle.release.remote("job-1", 75 * ONE_TOKEN // 10))

    ray.kill(handle, no_restart=False)  # a crash: Ray restarts it, its state is only the ledger
    # The caller never saw an answer and retries everything: nothing moves again.
    ray.get(handle.mint.remote("renter", 10 * ONE_TOKEN, "buy-1"))
    ray.get(handle.lock.remote("job-1", "renter", "provider", 10 * ONE_TOKEN))
    again = ray.get(handle.release.remote("job-1", 75 * ONE_TOKEN // 10))
    assert again == first
    books = ray.get(handle.books.remote())
    assert books.total_supply == 10 * ONE_TOKEN
    assert books.balances == {"renter": 25 * ONE_TOKEN // 10, "provider": 735 * ONE_TOKEN // 100,
                              "platform": 15 * ONE_TOKEN // 100}
    assert books.residual == 0
    engine = engine_for(settings.resolved_database_url)
    SqlEscrowBackend(engine).verify_books()
    ray.kill(handle, no_restart=True)


def test_service_over_the_actor_survives_a_kill_between_steps(ray_session: None, settings: Settings) -> None:
    engine = engine_for(settings.resolved_database_url)
    migrate(engine)
    handle = launch_escrow_ledger(settings)
    svc = MarketplaceService(engine, RemoteEscrow(handle=handle), settings)
    prov, rent = Principal("prov", Role.PROVIDER), Principal("rent", Role.CUSTOMER)
    svc.escrow.mint("rent", 3 * ONE_TOKEN, "f")
    offer = svc.register_offer(prov, OfferSpec("L4", 4, 24, 100, ONE_TOKEN, "eu"))
    jobs = [svc.create_job(rent, offer.id, "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", 3600).id
            for _ in range(2)]
    ray.kill(handle, no_restart=False)
    svc.accept(prov, jobs[0])
    cancelled = svc.cancel(rent, jobs[1])  # goes through the restarted actor
    assert cancelled.settlement is not None and cancelled.settlement.refunded == ONE_TOKEN
    svc.start(prov, jobs[0])
    done = svc.complete(prov, jobs[0])
    assert done.settlement is not None and not done.escrow_pending
    esc = svc.escrow
    assert esc.total_supply() == 3 * ONE_TOKEN
    assert esc.total_supply() == sum(esc.balance_of(a) for a in esc.accounts()) + esc.escrowed_total()
    assert esc.escrowed_total() == 0
    SqlEscrowBackend(engine).verify_books()
    ray.kill(handle, no_restart=True)
