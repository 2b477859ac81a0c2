"""Stake on the contracts (in-process EVM): the SQL ledger's stake story gives the same numbers,
the minimum stake gates new jobs, and the escrow holds exactly what is locked plus staked."""

from __future__ import annotations

import pytest

from hcp.errors import ChainRevertError, InsufficientStakeError
from hcp.marketplace.chain.stack import ChainStack
from hcp.marketplace.escrow_backend import ONE_TOKEN, UNBONDING_SECONDS
from tests.unit.marketplace.stake_scenario import run_stake_story


def _advance(stack: ChainStack):  # type: ignore[no-untyped-def]
    def go(seconds: int) -> None:
        now = stack.client.get_block("latest")["timestamp"]
        stack.client.set_next_block_timestamp(now + seconds)
        stack.client.mine()
    return go


def _escrow_holds_locked_plus_staked(stack: ChainStack) -> None:
    held = stack.client.call(stack.contracts.token.functions.balanceOf(stack.contracts.escrow.address))
    assert held == stack.escrow.escrowed_total() + stack.escrow.staked_total()


def test_stake_story_on_chain(stack: ChainStack) -> None:
    assert stack.client.call(stack.contracts.escrow.functions.UNBONDING_PERIOD()) == UNBONDING_SECONDS
    run_stake_story(stack.escrow, _advance(stack))
    _escrow_holds_locked_plus_staked(stack)


def test_min_stake_gates_new_jobs(stack: ChainStack) -> None:
    m, e = stack.market, stack.escrow
    e.mint("renter", 100 * ONE_TOKEN, "f-r")
    e.mint("prov", 100 * ONE_TOKEN, "f-p")
    rid = m.register_resource("prov", "RTX4090", 16, 64, 500, 10 * ONE_TOKEN)
    m.set_min_stake(50 * ONE_TOKEN)
    with pytest.raises(InsufficientStakeError):
        m.create_job("j1", "renter", rid, "bafy-image", 3600)
    e.stake("prov", 50 * ONE_TOKEN, "st-1")
    assert m.create_job("j1", "renter", rid, "bafy-image", 3600).max_cost == 10 * ONE_TOKEN
    e.request_unstake("prov", 1, "st-2")  # bonded falls below the minimum: no new job
    with pytest.raises(InsufficientStakeError):
        m.create_job("j2", "renter", rid, "bafy-image", 3600)
    _escrow_holds_locked_plus_staked(stack)


def test_only_an_oracle_slashes_and_stake_cannot_be_donated(stack: ChainStack) -> None:
    e, c = stack.escrow, stack.contracts
    e.mint("prov", 10, "f-p")
    e.stake("prov", 10, "st")
    rogue = e.sender("rogue")
    with pytest.raises(ChainRevertError, match="NotOracle"):
        stack.client.transact(c.marketplace.functions.slashStake(e.address_of("prov"), 10, b"\0" * 32,
                                                                 b"\1" * 32, "x"), rogue)
    with pytest.raises(ChainRevertError, match="NotMarketplace"):
        stack.client.transact(c.escrow.functions.slash(e.address_of("prov"), 10, b"\0" * 32, b"\1" * 32),
                              stack.operator)
    with pytest.raises(ChainRevertError, match="DirectEscrowTransfer"):
        stack.client.transact(c.token.functions.transfer(c.escrow.address, 1), e.sender("prov"))
    assert e.stake_of("prov").bonded == 10
