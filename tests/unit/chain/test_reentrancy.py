"""PaymentEscrow under a re-entrant token (in-process EVM): checks-effects-interactions.

The attacker (tests/unit/chain/contracts/ReentrantToken.sol) is the escrow's token and its
marketplace, so every payout calls back into it. At each callback the escrow's views must
already show the finished operation (the partial release's replay record, the settled state
and a zero remainder), and a re-entrant payout must be refused by the guard.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.build import compile_with
from hcp.marketplace.chain.client import ChainClient
from hcp.marketplace.chain.ids import job_key, op_key

ATTACKER = Path(__file__).with_name("contracts") / "ReentrantToken.sol"
LOCKED, RELEASED = 1, 2


@pytest.fixture(scope="module")
def rig() -> tuple[ChainClient, object, object, str, str]:
    built = compile_with({"ReentrantToken.sol": ATTACKER.read_text()})
    client = ChainClient.in_process()
    op = client.default_signer()
    accounts = client.w3.eth.accounts
    user, provider, platform = accounts[1], accounts[2], accounts[3]
    token_addr = client.deploy(built["ReentrantToken"]["abi"], built["ReentrantToken"]["bytecode"], op)
    escrow_addr = client.deploy(built["PaymentEscrow"]["abi"], built["PaymentEscrow"]["bytecode"], op,
                                op.address, token_addr, platform)
    token = client.contract(token_addr, built["ReentrantToken"]["abi"])
    escrow = client.contract(escrow_addr, built["PaymentEscrow"]["abi"])
    client.transact(escrow.functions.setMarketplace(token_addr), op)
    client.transact(token.functions.setEscrow(escrow_addr), op)
    return client, token, escrow, user, provider


def _seen(client: ChainClient, token, start: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    n = client.call(token.functions.seenCount())
    return [tuple(client.call(token.functions.seen(i))) for i in range(start, n)]


def test_partial_release_records_its_replay_key_before_paying(rig) -> None:  # type: ignore[no-untyped-def]
    client, token, _escrow, user, provider = rig
    op = client.default_signer()
    job, key = job_key("re-partial"), op_key("part-1")
    client.transact(token.functions.open(job, user, provider, 10_000), op)
    start = client.call(token.functions.seenCount())
    client.transact(token.functions.payPart(job, 5_000, key), op)
    seen = _seen(client, token, start)
    assert len(seen) == 2  # provider, then platform
    for state, remaining, recorded, total_locked, blocked in seen:
        assert (state, remaining, recorded, total_locked) == (LOCKED, 5_000, 5_000, 5_000)
        assert blocked
    assert client.call(token.functions.balanceOf(provider)) == 4_900


def test_settlement_is_final_before_any_transfer(rig) -> None:  # type: ignore[no-untyped-def]
    client, token, escrow, user, provider = rig
    op = client.default_signer()
    job = job_key("re-settle")
    client.transact(token.functions.open(job, user, provider, 10_000), op)
    locked_before = client.call(escrow.functions.totalLocked())
    start = client.call(token.functions.seenCount())
    client.transact(token.functions.settle(job, 7_500), op)
    seen = _seen(client, token, start)
    assert len(seen) == 3  # provider, platform, refund to the user
    for state, remaining, _recorded, total_locked, blocked in seen:
        assert (state, remaining, total_locked) == (RELEASED, 0, locked_before - 10_000)
        assert blocked
    record = client.call(escrow.functions.getEscrow(job))
    assert record[7:10] == (7_350, 150, 2_500)  # what the settle moved, as the views report it
