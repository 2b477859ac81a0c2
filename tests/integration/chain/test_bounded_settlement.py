"""Settlement gas does not grow with the resources a provider lists (issue 14, item 5).

Before the fix every completeJob / resolveDispute mirrored the new score onto each of the
provider's resources: about 26,000 gas per resource, past the client's 3,000,000 limit at ~100
resources and past the 30,000,000 block limit at ~1,100, so a disputed job's escrow stayed
locked. Here a provider lists thousands of resources and every path still settles at the gas a
one-resource provider pays.
"""

from __future__ import annotations

from hcp.marketplace.chain.market import JobStatus
from hcp.marketplace.chain.settlement import PATHS, register_many, settlement_gas
from hcp.marketplace.chain.stack import ChainStack
from hcp.marketplace.escrow_backend import ONE_TOKEN

MANY = 4000
PRICE = 10 * ONE_TOKEN


def test_every_settlement_path_is_bounded_with_thousands_of_resources(anvil_stack: ChainStack) -> None:
    stack = anvil_stack
    e, m = stack.escrow, stack.market
    e.mint("renter", 1000 * ONE_TOKEN, "bounded-faucet")
    (rid,) = register_many(stack, "prov", 1, PRICE)
    settlement_gas(stack, "renter", "prov", rid, "warm")  # first writes of labels, scores, metrics
    base = settlement_gas(stack, "renter", "prov", rid, "one")

    ids = register_many(stack, "prov", MANY - 1, PRICE)
    assert stack.client.call(stack.contracts.registry.functions.resourceCount()) == MANY
    assert len(stack.client.call(stack.contracts.registry.functions.getProviderResources(
        e.address_of("prov")))) == MANY
    many = settlement_gas(stack, "renter", "prov", rid, "many")

    for path in PATHS:
        # The same work whatever the count: a few hundred gas of slack for storage that
        # happens to be warm or zero in one round and not the other.
        assert abs(many[path] - base[path]) <= 1_000, (path, base[path], many[path])
        assert many[path] < stack.client.gas_limit // 5
        job = m.job(f"many-{path}")
        assert job.status == (JobStatus.CANCELLED if path == "cancel" else JobStatus.COMPLETED)
    # Every escrow closed; the score is mirrored on the newest resource too (read, not written).
    assert e.escrowed_total() == 0
    assert m.resource(ids[-1]).reputation == m.reputation("prov") == m.resource(rid).reputation
    assert e.total_supply() == sum(e.balance_of(a) for a in e.accounts())
