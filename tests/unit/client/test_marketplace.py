"""The marketplace through the SDK: wallet logins, offers, a job paid out 98/2, refusals."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from fastapi.testclient import TestClient

from hcp.auth.tokens import Role
from hcp.client import AsyncHcpClient, HcpClient
from hcp.errors import (
    InsufficientFundsError,
    JobTransitionError,
    OfferNotFoundError,
    PermissionDeniedError,
    WalletAuthError,
)
from hcp.marketplace.jobs import JobStatus
from tests.unit.api.support import later
from tests.unit.client.flaky import FlakyTransport
from tests.unit.client.support import Platform, leftovers, make_platform, run

CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
TOKEN = 10**18


def _login(http: TestClient, role: str) -> tuple[HcpClient, str]:
    acct = Account.create()
    c = HcpClient(http=http)
    ch = c.marketplace.challenge(acct.address, role)
    signature = acct.sign_message(encode_defunct(text=ch.message)).signature.hex()
    session = c.marketplace.login(acct.address, ch.nonce, signature)  # the client now uses it
    assert session.subject == acct.address and c.token == session.token
    with pytest.raises(WalletAuthError):  # a challenge is good for one login
        HcpClient(http=http).marketplace.login(acct.address, ch.nonce, signature)
    return c, acct.address


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    return make_platform(tmp_path)  # one per test: the first moves the platform's clock


def test_rent_a_gpu_and_see_the_payment_split(platform: Platform) -> None:
    with TestClient(platform.app, base_url="http://hcp") as http:
        renter, renter_id = _login(http, "renter")
        provider, provider_id = _login(http, "provider")
        admin = HcpClient(http=http, token=platform.token(Role.ADMIN, "ops")).marketplace
        assert admin.mint(renter_id, 10 * TOKEN, op_id="buy-1").balance == 10 * TOKEN
        assert admin.mint(renter_id, 10 * TOKEN, op_id="buy-1").balance == 10 * TOKEN  # once
        offers = [provider.marketplace.create_offer(gpu_model="A100", vcpu=8, memory_gb=80,
                                                    storage_gb=500, price_per_hour=p * TOKEN,
                                                    location="eu-west") for p in (12, 10, 11)]
        assert offers[1].price_per_hour == 10 * TOKEN and leftovers(offers[1]) == []
        found = list(renter.marketplace.iter_offers(page_size=1, gpu_model="A100"))
        assert [o.id for o in found] == [offers[1].id, offers[2].id, offers[0].id]  # cheapest first
        provider.marketplace.update_offer(offers[0].id, available=False)
        assert offers[0].id not in {o.id for o in renter.marketplace.iter_offers(gpu_model="A100")}

        job = renter.marketplace.create_job(offers[1].id, CID, 3600)
        assert job.status is JobStatus.CREATED and job.max_cost == 10 * TOKEN
        assert renter.marketplace.balance().balance == 0  # all of it locked in escrow
        with pytest.raises(JobTransitionError):
            provider.marketplace.start_job(job.id)  # not accepted yet
        provider.marketplace.accept_job(job.id)
        provider.marketplace.start_job(job.id)
        later(platform.harness.clock, 2700)
        done = provider.marketplace.complete_job(job.id)
        assert done.status is JobStatus.COMPLETED and done.final_cost == 7_500_000_000_000_000_000
        s = done.settlement
        assert s is not None and leftovers(done) == []
        assert (s.to_provider, s.to_platform, s.refunded) == (
            done.final_cost * 98 // 100, done.final_cost * 2 // 100, 10 * TOKEN - done.final_cost)
        assert provider.marketplace.balance().balance == s.to_provider
        assert renter.marketplace.balance().balance == s.refunded
        books = admin.ledger()
        assert books.total_supply == 10 * TOKEN and books.escrowed == 0
        assert books.balances[books.platform_account] == s.to_platform
        assert [j.id for j in renter.marketplace.list_jobs(status="COMPLETED")] == [job.id]
        rep = renter.marketplace.reputation(provider_id)
        assert rep.completed_jobs == 1 and leftovers(rep) == []
        assert admin.reward(provider_id, 5).bonus >= 5
        assert admin.penalize(provider_id, 3).penalty >= 3
        assert admin.report_uptime(provider_id, 3500, 3600).provider == provider_id

        with pytest.raises(OfferNotFoundError):
            renter.marketplace.get_offer("no-such-offer")
        with pytest.raises(PermissionDeniedError):
            provider.marketplace.create_job(offers[2].id, CID, 60)
        with pytest.raises(InsufficientFundsError):
            renter.marketplace.create_job(offers[2].id, CID, 10 * 3600)
        with pytest.raises(PermissionDeniedError):
            renter.marketplace.balance(provider_id)


def test_dispute_resolution_and_cancellation(platform: Platform) -> None:
    with TestClient(platform.app, base_url="http://hcp") as http:
        renter, renter_id = _login(http, "renter")
        provider, _ = _login(http, "provider")
        admin = HcpClient(http=http, token=platform.token(Role.ADMIN, "ops")).marketplace
        admin.mint(renter_id, 4 * TOKEN)
        offer = provider.marketplace.create_offer(gpu_model="H100", vcpu=16, memory_gb=80,
                                                  storage_gb=100, price_per_hour=TOKEN, location="us")
        kept = renter.marketplace.create_job(offer.id, CID, 3600)
        dropped = renter.marketplace.create_job(offer.id, CID, 3600)
        assert renter.marketplace.cancel_job(dropped.id).status is JobStatus.CANCELLED
        provider.marketplace.accept_job(kept.id)
        provider.marketplace.start_job(kept.id)
        assert renter.marketplace.dispute_job(kept.id, "no output").status is JobStatus.DISPUTED
        settled = admin.resolve_job(kept.id, "inconclusive")
        assert settled.status is JobStatus.COMPLETED and settled.settlement is not None
        assert settled.settlement.refunded == TOKEN // 2  # half of what was locked goes back
        assert renter.marketplace.balance().balance == 3 * TOKEN + TOKEN // 2


def test_a_mint_whose_answer_is_lost_is_resent_and_credits_once(platform: Platform) -> None:
    flaky = FlakyTransport(httpx.ASGITransport(app=platform.app), "POST",
                           "/api/v1/marketplace/ledger/mint")

    async def go() -> int:
        async with httpx.AsyncClient(transport=flaky, base_url="http://hcp") as http:
            admin = AsyncHcpClient(http=http, token=platform.token(Role.ADMIN, "ops"),
                                   sleep=lambda s: None).marketplace
            await admin.mint("lost-answer", 5 * TOKEN)  # one generated op_id, sent twice
            return (await admin.balance("lost-answer")).balance

    assert run(go()) == 5 * TOKEN and flaky.reached == 2
