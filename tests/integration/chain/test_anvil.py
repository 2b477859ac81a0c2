"""The full lifecycle, disputes, concurrency and re-orgs on a real JSON-RPC node (anvil)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hcp.config import Settings
from hcp.errors import EscrowStateError, JobTransitionError
from hcp.marketplace.chain.deploy import Deployment
from hcp.marketplace.chain.escrow_backend import ChainEscrowBackend
from hcp.marketplace.chain.ids import job_key
from hcp.marketplace.chain.indexer import ChainIndexer
from hcp.marketplace.chain.keys import KeyRing
from hcp.marketplace.chain.market import JobStatus, Outcome
from hcp.marketplace.chain.models import ChainEvent, ChainJob
from hcp.marketplace.chain.stack import ChainStack, open_chain, run_lifecycle
from hcp.marketplace.escrow_backend import ONE_TOKEN
from hcp.store.db import connect, migrate

from .conftest import SEED


def books_balance(stack: ChainStack) -> None:
    e = stack.escrow
    assert e.total_supply() == (sum(e.balance_of(a) for a in e.accounts()) + e.escrowed_total()
                                + e.staked_total())


def test_deployment_file_is_reused(anvil_settings: Settings, anvil_stack: ChainStack) -> None:
    saved = Deployment.load(anvil_settings.chain.deployment)  # type: ignore[arg-type]
    assert saved == anvil_stack.deployment
    again = open_chain(anvil_settings)
    assert again.contracts.marketplace.address == anvil_stack.contracts.marketplace.address


def test_lifecycle_and_worked_example_on_anvil(anvil_stack: ChainStack) -> None:
    stack = anvil_stack
    stack.escrow.mint("renter", 100 * ONE_TOKEN, "faucet")
    rid = stack.market.register_resource("prov", "H100", 26, 80, 2000, 10 * ONE_TOKEN)
    job = run_lifecycle(stack, "job-1", "renter", rid, "prov", estimated_seconds=3600, actual_seconds=2700)
    assert job.status == JobStatus.COMPLETED and job.final_cost == 7_500_000_000_000_000_000
    assert stack.escrow.balance_of("prov") == 7_350_000_000_000_000_000
    assert stack.escrow.balance_of("platform") == 150_000_000_000_000_000
    assert stack.escrow.balance_of("renter") == 92_500_000_000_000_000_000
    with pytest.raises(JobTransitionError):
        stack.market.start("job-1", "prov")
    books_balance(stack)


@pytest.mark.parametrize("outcome", list(Outcome))
def test_disputes_on_anvil(anvil_stack: ChainStack, outcome: Outcome) -> None:
    stack, m = anvil_stack, anvil_stack.market
    stack.escrow.mint("renter", 20 * ONE_TOKEN, "faucet")
    rid = m.register_resource("prov", "H100", 26, 80, 2000, 10 * ONE_TOKEN)
    m.create_job("d", "renter", rid, "bafy-image", 3600)
    m.accept("d", "prov")
    m.dispute("d", "renter", "never started")
    job = m.resolve("d", outcome)
    expected = {Outcome.PROVIDER_FAULT: 0, Outcome.USER_FAULT: 10 * ONE_TOKEN, Outcome.INCONCLUSIVE: 5 * ONE_TOKEN}
    assert job.final_cost == expected[outcome]
    assert stack.escrow.balance_of("renter") == 20 * ONE_TOKEN - expected[outcome]
    books_balance(stack)


def test_escrow_backend_on_anvil_with_concurrent_senders(anvil_stack: ChainStack) -> None:
    e = anvil_stack.escrow
    e.mint("warmup", 1, "warm")  # labels the platform path once before the threads race
    # One operator key, many threads: the per-sender nonce manager must not collide.
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda i: e.mint(f"user-{i % 3}", 1000 + i, f"mint-{i}"), range(18)))
    assert e.total_supply() == 1 + sum(1000 + i for i in range(18))
    e.lock("j", "user-0", "user-1", 500)
    s = e.release("j", 200)
    assert (s.to_provider, s.to_platform, s.refunded) == (196, 4, 300)
    retry = ChainEscrowBackend(anvil_stack.client, anvil_stack.contracts, KeyRing(SEED.encode()),
                               anvil_stack.operator)
    assert retry.release("j", 200) == s
    with pytest.raises(EscrowStateError):
        retry.refund("j")
    books_balance(anvil_stack)


def test_indexer_survives_an_anvil_reorg(anvil_stack: ChainStack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = connect(f"sqlite:///{tmp_path / 'idx.db'}")
    migrate(engine)
    e = anvil_stack.escrow
    e.mint("renter", 10_000, "faucet")
    e.lock("kept", "renter", "prov", 1000)
    ix = ChainIndexer(anvil_stack.client, anvil_stack.contracts, engine)
    ix.run_until_head()
    snap = anvil_stack.client.snapshot()
    e.lock("orphan", "renter", "prov", 500)
    ix.run_until_head()
    anvil_stack.client.revert_to(snap)
    other = ChainEscrowBackend(anvil_stack.client, anvil_stack.contracts, KeyRing(SEED.encode()),
                               anvil_stack.operator)
    other.release("kept", 10)
    other.lock("replacement", "renter", "prov", 20)
    ix.run_until_head()
    with Session(engine) as s:
        keys = set(s.scalars(select(ChainJob.job_key)))
        rows = s.execute(select(ChainEvent.block_number, ChainEvent.block_hash)).all()
    assert "0x" + job_key("orphan").hex() not in keys
    assert {"0x" + job_key("kept").hex(), "0x" + job_key("replacement").hex()} <= keys
    for number, h in rows:
        assert anvil_stack.client.get_block(number)["hash"].to_0x_hex() == h
    engine.dispose()
