"""Stake on the SQL ledger (SQLite and PostgreSQL): bond, unbond, withdraw, slash, books."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from hcp.errors import StakeUnbondingError, ValidationError
from hcp.marketplace import models as m
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from tests.unit.marketplace.conftest import ManualClock
from tests.unit.marketplace.stake_scenario import run_stake_story


def test_stake_story_on_the_sql_ledger(engine: Engine, clock: ManualClock) -> None:
    ledger = SqlEscrowBackend(engine, clock=clock.now)
    run_stake_story(ledger, clock.advance)
    ledger.verify_books()


def test_stake_accounts_are_reserved_and_books_check_the_split(engine: Engine, clock: ManualClock) -> None:
    ledger = SqlEscrowBackend(engine, clock=clock.now)
    with pytest.raises(ValidationError):
        ledger.mint("stake:prov", 1, "reserved")
    ledger.mint("prov", 10, "f")
    ledger.stake("prov", 7, "s")
    ledger.request_unstake("prov", 3, "u")
    ledger.verify_books()
    with engine.begin() as c:
        c.execute(m.LedgerStake.__table__.update().values(bonded=5))
    with pytest.raises(AssertionError, match="stake of prov"):
        ledger.verify_books()


def test_unbonding_restarts_with_each_request(engine: Engine, clock: ManualClock) -> None:
    ledger = SqlEscrowBackend(engine, clock=clock.now, unbonding_seconds=100)
    ledger.mint("prov", 10, "f")
    ledger.stake("prov", 10, "s")
    first = ledger.request_unstake("prov", 4, "u1").release_at
    clock.advance(60)
    second = ledger.request_unstake("prov", 4, "u2").release_at
    assert first is not None and second is not None and (second - first).total_seconds() == 60
    clock.advance(50)  # past the first request's release, not the second's
    with pytest.raises(StakeUnbondingError):
        ledger.withdraw_stake("prov", "w")
    clock.advance(50)  # 160 s: the second request's release
    assert ledger.withdraw_stake("prov", "w") == 8
    with engine.connect() as c:
        kinds = list(c.execute(select(m.LedgerTransaction.kind).order_by(m.LedgerTransaction.id)).scalars())
    assert kinds == ["mint", "stake", "unstake", "unstake", "withdraw"]
