"""One stake story run on every ledger (SQL here, the chain in tests/unit/chain/test_stake.py):
the same calls give the same numbers and the same typed refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hcp.errors import (
    IdempotencyConflictError,
    InsufficientFundsError,
    InsufficientStakeError,
    StakeUnbondingError,
    ValidationError,
)
from hcp.marketplace.escrow_backend import ONE_TOKEN, UNBONDING_SECONDS, EscrowBackend


def books_balance(b: EscrowBackend) -> None:
    total = sum(b.balance_of(a) for a in b.accounts())
    assert b.total_supply() == total + b.escrowed_total() + b.staked_total()


def run_stake_story(b: EscrowBackend, advance: Callable[[int], None]) -> None:
    b.mint("prov", 100 * ONE_TOKEN, "s-faucet-p")
    b.mint("renter", 50 * ONE_TOKEN, "s-faucet-r")
    st = b.stake("prov", 60 * ONE_TOKEN, "s-1")
    assert (st.bonded, st.unbonding, st.release_at) == (60 * ONE_TOKEN, 0, None)
    assert b.stake("prov", 60 * ONE_TOKEN, "s-1").bonded == 60 * ONE_TOKEN  # a replay moves nothing
    assert b.balance_of("prov") == 40 * ONE_TOKEN and b.staked_total() == 60 * ONE_TOKEN
    with pytest.raises(IdempotencyConflictError):
        b.stake("prov", 1, "s-1")
    with pytest.raises(InsufficientFundsError):
        b.stake("prov", 41 * ONE_TOKEN, "s-2")
    books_balance(b)

    # Unbonding: no longer bonded, still slashable, withdrawable only after the period.
    st = b.request_unstake("prov", 20 * ONE_TOKEN, "s-3")
    assert (st.bonded, st.unbonding) == (40 * ONE_TOKEN, 20 * ONE_TOKEN) and st.release_at is not None
    with pytest.raises(InsufficientStakeError):
        b.request_unstake("prov", 41 * ONE_TOKEN, "s-4")
    with pytest.raises(IdempotencyConflictError):
        b.request_unstake("prov", 1, "s-1")  # the op id of the stake, reused for another kind
    with pytest.raises(StakeUnbondingError):
        b.withdraw_stake("prov", "s-5")

    # A slash without a job goes to the platform; bonded stake is taken first.
    s = b.slash("prov", 30 * ONE_TOKEN, "slash-1")
    assert (s.amount, s.beneficiary) == (30 * ONE_TOKEN, b.platform_account)
    assert b.slash("prov", 30 * ONE_TOKEN, "slash-1").amount == 30 * ONE_TOKEN  # replay: nothing more
    with pytest.raises(IdempotencyConflictError):
        b.slash("prov", 31 * ONE_TOKEN, "slash-1")
    assert b.balance_of(b.platform_account) == 30 * ONE_TOKEN
    st = b.stake_of("prov")
    assert (st.bonded, st.unbonding) == (10 * ONE_TOKEN, 20 * ONE_TOKEN)

    # A slash naming the provider's job goes to that job's renter, and can reach unbonding stake.
    b.lock("s-job", "renter", "prov", 5 * ONE_TOKEN)
    with pytest.raises(ValidationError):
        b.slash("renter", 1, "slash-x", "s-job")  # not the renter's job as a provider
    s = b.slash("prov", 15 * ONE_TOKEN, "slash-2", "s-job")
    assert (s.amount, s.beneficiary, s.job_id) == (15 * ONE_TOKEN, "renter", "s-job")
    st = b.stake_of("prov")
    assert (st.bonded, st.unbonding) == (0, 15 * ONE_TOKEN)
    assert b.balance_of("renter") == 60 * ONE_TOKEN  # 50 - 5 locked + 15
    books_balance(b)

    # A slash larger than the stake takes what there is.
    advance(UNBONDING_SECONDS + 1)
    assert b.withdraw_stake("prov", "s-6") == 15 * ONE_TOKEN
    assert b.withdraw_stake("prov", "s-6") == 15 * ONE_TOKEN  # replay pays nothing more
    assert b.balance_of("prov") == 55 * ONE_TOKEN and b.staked_total() == 0
    with pytest.raises(StakeUnbondingError):
        b.withdraw_stake("prov", "s-7")
    assert b.slash("prov", ONE_TOKEN, "slash-3").amount == 0
    b.refund("s-job")
    assert b.total_supply() == 150 * ONE_TOKEN
    books_balance(b)
