"""What settlements paid with the chain escrow, by party, as the ledger actor records it: from
the events the indexer stored, each settlement once, none again after a restart."""

from __future__ import annotations

from sqlalchemy import Engine

from hcp.marketplace.chain.escrow_backend import ChainEscrowBackend
from hcp.marketplace.chain.indexer import ChainIndexer
from hcp.marketplace.chain.stack import ChainStack, run_lifecycle
from hcp.marketplace.escrow_backend import ONE_TOKEN, split_payment
from hcp.observability.marketplace import MarketplaceRecorder
from hcp.observability.sink import PrometheusSink
from hcp.store.db import connect

SETTLED = "hcp_marketplace_settled_amount_total"
PRICE = 10 * ONE_TOKEN  # per hour


def _books(e: ChainEscrowBackend) -> tuple[int, int]:
    supply, escrowed, staked = e.total_supply(), e.escrowed_total(), e.staked_total()
    balances = sum(e.balance_of(a) for a in e.accounts())
    return escrowed, supply - balances - escrowed - staked


def _recorder(engine: Engine, stack: ChainStack) -> tuple[MarketplaceRecorder, PrometheusSink]:
    sink = PrometheusSink()
    return MarketplaceRecorder(engine, lambda: _books(stack.escrow), "chain", sink), sink


def _settled(sink: PrometheusSink) -> dict[str, float | None]:
    return {p: sink.value(SETTLED, party=p) for p in ("provider", "platform", "refund")}


def test_chain_settlements_are_counted_once_by_party(stack: ChainStack, database_url: str) -> None:
    engine = connect(database_url)
    e, m = stack.escrow, stack.market
    e.mint("renter", 50 * ONE_TOKEN, "faucet")
    rid = m.register_resource("prov", "A100", 32, 80, 1000, PRICE)
    run_lifecycle(stack, "before", "renter", rid, "prov", 3600, 1800)  # settled before the start
    indexer = ChainIndexer(stack.client, stack.contracts, engine)
    indexer.run_until_head()
    rec, sink = _recorder(engine, stack)
    rec.record()
    assert _settled(sink) == dict.fromkeys(("provider", "platform", "refund"), 0)  # history
    assert sink.value("hcp_escrow_conservation_residual", backend="chain") == 0

    # 45 minutes of a 10-token hour: 7.5 tokens paid 98 % / 2 %, 2.5 of the lock back.
    job = run_lifecycle(stack, "job-1", "renter", rid, "prov", 3600, 2700)
    indexer.run_until_head()
    rec.record()
    rec.record()  # nothing new: nothing counted again
    paid = job.final_cost
    provider, platform = split_payment(paid)
    assert paid == 75 * ONE_TOKEN // 10 and platform == paid * 2 // 100
    rec_1 = e.escrow_record("job-1")
    assert (rec_1["paid_provider"], rec_1["paid_platform"], rec_1["refunded"]) == (
        provider, platform, PRICE - paid)
    # Prometheus holds floats: each party's is the float of the chain's integer.
    assert _settled(sink) == {"provider": float(provider), "platform": float(platform),
                              "refund": float(PRICE - paid)}

    # A restarted recorder over the same rows: the past settlement is history again...
    again, fresh = _recorder(engine, stack)
    again.record()
    again.record()
    assert _settled(fresh) == dict.fromkeys(("provider", "platform", "refund"), 0)
    # ...and a direct escrow's partial release and settlement afterwards count once, in it.
    e.lock("direct-1", "renter", "prov", 1000)
    e.partial_release("direct-1", 300, "p1")
    e.release("direct-1", 700)
    indexer.run_until_head()
    again.record()
    p300, f300 = split_payment(300)
    p400, f400 = split_payment(400)
    assert _settled(fresh) == {"provider": float(p300 + p400), "platform": float(f300 + f400),
                               "refund": 300.0}
    engine.dispose()
