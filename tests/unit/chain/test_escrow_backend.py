"""ChainEscrowBackend on the in-process EVM: the money rules, idempotency, typed refusals."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcp.errors import (
    ChainRevertError,
    EscrowStateError,
    IdempotencyConflictError,
    InsufficientFundsError,
    ValidationError,
)
from hcp.marketplace.chain.escrow_backend import ChainEscrowBackend
from hcp.marketplace.chain.ids import job_key, op_key
from hcp.marketplace.chain.keys import KeyRing
from hcp.marketplace.chain.stack import ChainStack
from hcp.marketplace.escrow_backend import ONE_TOKEN, cost_for, split_payment

from .conftest import SEED


def books_balance(e: ChainEscrowBackend) -> bool:
    return e.total_supply() == sum(e.balance_of(a) for a in e.accounts()) + e.escrowed_total()


def test_seed_worked_example(stack: ChainStack) -> None:
    e = stack.escrow
    e.mint("renter", 20 * ONE_TOKEN, "faucet-1")
    max_cost = cost_for(10 * ONE_TOKEN, 3600)
    e.lock("job-1", "renter", "provider", max_cost)
    assert e.locked_for("job-1") == 10 * ONE_TOKEN and e.escrowed_total() == 10 * ONE_TOKEN
    s = e.release("job-1", cost_for(10 * ONE_TOKEN, 2700))
    assert (s.to_provider, s.to_platform, s.refunded, s.remaining_locked) == (
        7_350_000_000_000_000_000, 150_000_000_000_000_000, 2_500_000_000_000_000_000, 0)
    assert e.balance_of("provider") == 7_350_000_000_000_000_000
    assert e.balance_of("platform") == 150_000_000_000_000_000
    assert e.balance_of("renter") == 12_500_000_000_000_000_000
    assert e.escrowed_total() == 0 and books_balance(e)


def test_replays_never_move_money_twice(stack: ChainStack) -> None:
    e = stack.escrow
    for _ in range(2):
        e.mint("a", 1000, "m1")
        e.transfer("a", "b", 100, "t1")
        e.lock("j", "a", "p", 500)
    assert (e.balance_of("a"), e.balance_of("b"), e.total_supply()) == (400, 100, 1000)
    first = e.partial_release("j", 101, "pr1")
    assert e.partial_release("j", 101, "pr1") == first
    assert first.remaining_locked == 399 and (first.to_provider, first.to_platform) == split_payment(101)
    done = e.release("j", 300)  # whole cost: 101 already paid, 199 now, 200 back
    assert (done.to_provider + done.to_platform, done.refunded) == (199, 200)
    assert e.release("j", 300) == done
    assert e.balance_of("a") == 600 and books_balance(e)


def test_conflicting_reuse_and_bad_input_are_typed(stack: ChainStack) -> None:
    e = stack.escrow
    e.mint("a", 1000, "m1")
    with pytest.raises(IdempotencyConflictError):
        e.mint("a", 999, "m1")
    e.lock("j", "a", "p", 500)
    with pytest.raises(IdempotencyConflictError):
        e.lock("j", "a", "p", 501)
    with pytest.raises(InsufficientFundsError):
        e.lock("j2", "a", "p", 501)
    with pytest.raises(InsufficientFundsError):
        e.transfer("a", "b", 501, "t")
    with pytest.raises(EscrowStateError):
        e.partial_release("j", 501, "x")
    with pytest.raises(EscrowStateError):
        e.release("nope", 1)
    with pytest.raises(ValidationError):
        e.mint("a", 0, "m2")
    with pytest.raises(ValidationError):
        e.split("j", 10_001)
    e.refund("j")
    assert e.refund("j").refunded == 500
    with pytest.raises(EscrowStateError):
        e.release("j", 0)
    assert e.balance_of("a") == 1000 and books_balance(e)


def test_split_halves_what_is_locked(stack: ChainStack) -> None:
    e = stack.escrow
    e.mint("a", 1001, "m")
    e.lock("j", "a", "p", 1001)
    s = e.split("j", 5000)
    assert s.to_provider + s.to_platform == 500 and s.refunded == 501
    assert (s.to_provider, s.to_platform) == split_payment(500)
    assert e.split("j", 5000) == s
    with pytest.raises(EscrowStateError):
        e.split("j", 10_000)


def test_only_the_marketplace_moves_escrow_and_only_oracles_settle(stack: ChainStack) -> None:
    e, c = stack.escrow, stack.contracts
    e.mint("a", 1000, "m")
    e.lock("j", "a", "p", 1000)
    renter = e.sender("a")
    with pytest.raises(ChainRevertError) as exc:
        stack.client.transact(c.marketplace.functions.settleEscrow(job_key("j"), 0), renter)
    assert exc.value.reason == "NotOracle"
    with pytest.raises(ChainRevertError) as exc:
        stack.client.transact(c.escrow.functions.refund(job_key("j")), stack.operator)
    assert exc.value.reason == "NotMarketplace"
    # Tokens cannot be pushed into the escrow contract around the marketplace.
    with pytest.raises(ChainRevertError) as exc:
        stack.client.transact(c.token.functions.transfer(c.escrow.address, 1), renter)
    assert exc.value.reason == "DirectEscrowTransfer"
    with pytest.raises(ChainRevertError) as exc:
        stack.client.transact(c.token.functions.mint(renter.address, 1, op_key("x")), renter)
    assert exc.value.reason == "NotMinter"
    assert e.locked_for("j") == 1000 and books_balance(e)


def test_rebuilt_backend_reads_the_same_books(stack: ChainStack) -> None:
    e = stack.escrow
    e.mint("alice", 5000, "m")
    e.lock("j", "alice", "bob", 3000)
    e.release("j", 1234)
    again = ChainEscrowBackend(stack.client, stack.contracts, KeyRing(SEED.encode()), stack.operator)
    assert sorted(again.accounts()) == ["alice", "bob", "platform"]
    assert {a: again.balance_of(a) for a in again.accounts()} == {a: e.balance_of(a) for a in e.accounts()}
    assert again.release("j", 1234) == e.release("j", 1234)


def test_crash_between_send_and_receipt_does_not_pay_twice(stack: ChainStack) -> None:
    e = stack.escrow
    e.mint("a", 1000, "m")
    e.lock("j", "a", "p", 1000)
    # The first attempt's transaction landed, but the caller died before learning it.
    stack.client.transact(stack.contracts.marketplace.functions.settleEscrow(job_key("j"), 600), stack.operator)
    retry = ChainEscrowBackend(stack.client, stack.contracts, KeyRing(SEED.encode()), stack.operator)
    s = retry.release("j", 600)
    assert s.to_provider + s.to_platform == 600 and s.refunded == 400
    assert retry.balance_of("p") + retry.balance_of("platform") == 600 and books_balance(retry)


def test_the_contract_rounds_like_the_python_rules(stack: ChainStack) -> None:
    m, esc = stack.contracts.marketplace, stack.contracts.escrow

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(price=st.integers(0, 10**30), seconds=st.integers(0, 10**7), amount=st.integers(0, 10**40))
    def check(price: int, seconds: int, amount: int) -> None:
        assert stack.client.call(m.functions.costFor(price, seconds)) == cost_for(price, seconds)
        fee = stack.client.call(esc.functions.calculatePlatformFee(amount))
        assert (amount - fee, fee) == split_payment(amount)

    check()


def test_a_settlement_replays_only_as_itself(stack: ChainStack) -> None:
    e = stack.escrow
    e.mint("a", 100, "m")
    e.lock("j0", "a", "p", 40)
    e.lock("j1", "a", "p", 60)
    nothing = e.split("j0", 0)  # pays nothing, refunds all: still a split, not a refund
    assert (nothing.to_provider, nothing.refunded) == (0, 40)
    with pytest.raises(EscrowStateError):
        e.refund("j0")
    assert e.split("j0", 0) == nothing
    e.refund("j1")
    with pytest.raises(EscrowStateError):
        e.split("j1", 0)
    with pytest.raises(EscrowStateError):
        e.release("j1", 0)
    assert e.balance_of("a") == 100 and books_balance(e)
