"""The indexer follows events into SQLite and PostgreSQL: idempotent, restartable, re-org safe."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hcp.marketplace.chain.escrow_backend import ChainEscrowBackend
from hcp.marketplace.chain.ids import job_key
from hcp.marketplace.chain.indexer import ChainIndexer
from hcp.marketplace.chain.keys import KeyRing
from hcp.marketplace.chain.models import ChainCursor, ChainEvent, ChainJob
from hcp.marketplace.chain.stack import ChainStack, run_lifecycle
from hcp.marketplace.escrow_backend import ONE_TOKEN
from hcp.store.db import connect, migrate

from .conftest import SEED


def _count(engine, model) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(model))


def _job(engine, job_id: str) -> ChainJob | None:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return s.get(ChainJob, "0x" + job_key(job_id).hex())


def test_follows_the_lifecycle_idempotently_and_across_restarts(stack: ChainStack, database_url: str) -> None:
    engine = connect(database_url)
    migrate(engine)
    e, m = stack.escrow, stack.market
    e.mint("renter", 50 * ONE_TOKEN, "faucet")
    rid = m.register_resource("prov", "A100", 32, 80, 1000, 10 * ONE_TOKEN)
    run_lifecycle(stack, "job-1", "renter", rid, "prov", 3600, 2700)

    ix = ChainIndexer(stack.client, stack.contracts, engine, batch_blocks=7)
    n = ix.run_until_head()
    assert n > 10 and _count(engine, ChainEvent) == n
    job = _job(engine, "job-1")
    assert job is not None and job.status == "COMPLETED"
    assert (job.locked, job.final_cost, job.refunded) == (10 * ONE_TOKEN, 75 * ONE_TOKEN // 10, 25 * ONE_TOKEN // 10)
    assert job.paid_provider == 7_350_000_000_000_000_000 and job.paid_platform == 150_000_000_000_000_000

    # A crash after writing events but before the cursor moved: re-reading adds nothing.
    with Session(engine) as s, s.begin():
        s.delete(s.get(ChainCursor, ix.name))
    again = ChainIndexer(stack.client, stack.contracts, engine)
    assert again.run_until_head() == 0 and _count(engine, ChainEvent) == n

    # A restarted indexer resumes from its stored cursor.
    head = stack.client.block_number()
    e.lock("direct-1", "renter", "prov", 1000)
    e.release("direct-1", 400)
    fresh = ChainIndexer(stack.client, stack.contracts, engine)
    assert fresh.cursor()[0] == head
    assert fresh.run_until_head() > 0
    d = _job(engine, "direct-1")
    assert d is not None and (d.kind, d.status, d.final_cost, d.refunded) == ("escrow", "RELEASED", 400, 600)
    engine.dispose()


def test_reorg_drops_orphaned_rows_and_rebuilds_jobs(stack: ChainStack, database_url: str) -> None:
    engine = connect(database_url)
    migrate(engine)
    e = stack.escrow
    e.mint("renter", 10_000, "faucet")
    e.lock("kept", "renter", "prov", 1000)
    ix = ChainIndexer(stack.client, stack.contracts, engine)
    ix.run_until_head()
    fork_block = stack.client.block_number()
    snap = stack.client.snapshot()

    e.partial_release("kept", 300, "p1")      # will be orphaned
    e.lock("orphan", "renter", "prov", 500)   # will be orphaned
    ix.run_until_head()
    assert _job(engine, "orphan") is not None and _job(engine, "kept").paid_provider > 0

    stack.client.revert_to(snap)              # the chain forgets those blocks...
    other = ChainEscrowBackend(stack.client, stack.contracts, KeyRing(SEED.encode()), stack.operator)
    other.lock("replacement", "renter", "prov", 7)  # ...and grows another branch
    other.partial_release("kept", 100, "p2")

    ix.run_until_head()
    with Session(engine) as s:
        blocks = s.scalars(select(ChainEvent.block_number)).all()
        hashes = {b: h for b, h in s.execute(select(ChainEvent.block_number, ChainEvent.block_hash))}
    assert _job(engine, "orphan") is None
    kept = _job(engine, "kept")
    assert kept is not None and kept.paid_provider + kept.paid_platform == 100
    assert _job(engine, "replacement") is not None and _job(engine, "replacement").locked == 7
    for b in set(blocks):
        assert hashes[b] == stack.client.get_block(b)["hash"].to_0x_hex()
    assert max(blocks) > fork_block
    engine.dispose()
