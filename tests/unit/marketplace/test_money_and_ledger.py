"""The money rules and the SQL double-entry ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from hcp.errors import (
    EscrowStateError,
    IdempotencyConflictError,
    InsufficientFundsError,
    StoreError,
    ValidationError,
)
from hcp.marketplace import models as m
from hcp.marketplace.escrow_backend import ONE_TOKEN, cost_for, split_payment
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from tests.unit.marketplace.ledger_machine import InjectedFault


@given(st.integers(0, 2**200))
def test_split_payment_is_exact_and_floors_the_fee(cost: int) -> None:
    provider, platform = split_payment(cost)
    assert provider + platform == cost
    assert platform == cost * 2 // 100
    assert provider >= cost * 98 // 100


@given(st.integers(0, 2**128), st.integers(0, 10**7))
def test_cost_never_exceeds_the_exact_price(price: int, seconds: int) -> None:
    c = cost_for(price, seconds)
    assert c * 3600 <= price * seconds < (c + 1) * 3600


def test_worked_example_on_the_sql_ledger(ledger: SqlEscrowBackend) -> None:
    price = 10 * ONE_TOKEN
    max_cost = cost_for(price, 3600)
    ledger.mint("renter", max_cost, "faucet-1")
    ledger.lock("job-1", "renter", "provider", max_cost)
    assert ledger.locked_for("job-1") == 10 * ONE_TOKEN
    s = ledger.release("job-1", cost_for(price, 2700))
    assert cost_for(price, 2700) == 7_500_000_000_000_000_000
    assert s.to_provider == 7_350_000_000_000_000_000
    assert s.to_platform == 150_000_000_000_000_000
    assert s.refunded == 2_500_000_000_000_000_000
    assert ledger.balance_of("provider") == 7_350_000_000_000_000_000
    assert ledger.balance_of("platform") == 150_000_000_000_000_000
    assert ledger.balance_of("renter") == 2_500_000_000_000_000_000
    assert ledger.escrowed_total() == 0
    ledger.verify_books()


def test_amounts_beyond_64_bits_are_exact(ledger: SqlEscrowBackend) -> None:
    huge = 2**256 - 1
    ledger.mint("whale", huge, "big")
    assert ledger.balance_of("whale") == huge
    assert ledger.total_supply() == huge


def test_every_transaction_sums_to_zero(ledger: SqlEscrowBackend, engine) -> None:  # type: ignore[no-untyped-def]
    ledger.mint("r", 1000, "m")
    ledger.lock("j", "r", "p", 700)
    ledger.partial_release("j", 101, "p1")
    ledger.split("j", 5000)
    with engine.connect() as c:
        entries = c.execute(select(m.LedgerEntry.tx_id, m.LedgerEntry.debit, m.LedgerEntry.credit,
                                   m.LedgerEntry.amount)).all()
    per_account: dict[str, int] = {}
    for _, debit, credit, amount in entries:
        per_account[debit] = per_account.get(debit, 0) - amount
        per_account[credit] = per_account.get(credit, 0) + amount
    assert sum(per_account.values()) == 0
    assert per_account["@issuance"] == -1000
    ledger.verify_books()
    # 101 paid early, then half of the 599 left: 299 paid, 300 back.
    assert ledger.balance_of("r") == 300 + 300
    assert ledger.balance_of("p") + ledger.balance_of("platform") == 101 + 299


def test_operations_are_idempotent(ledger: SqlEscrowBackend) -> None:
    ledger.mint("r", 500, "m1")
    ledger.mint("r", 500, "m1")
    assert ledger.total_supply() == 500
    ledger.lock("j", "r", "p", 400)
    ledger.lock("j", "r", "p", 400)
    assert ledger.balance_of("r") == 100
    first = ledger.release("j", 300)
    assert ledger.release("j", 300) == first
    assert ledger.balance_of("r") == 200
    with pytest.raises(IdempotencyConflictError):
        ledger.mint("r", 501, "m1")
    with pytest.raises(EscrowStateError):
        ledger.refund("j")
    with pytest.raises(EscrowStateError):
        ledger.release("j", 299)
    ledger.verify_books()


def test_refusals_move_nothing(ledger: SqlEscrowBackend) -> None:
    ledger.mint("r", 100, "m")
    with pytest.raises(InsufficientFundsError) as exc:
        ledger.lock("j", "r", "p", 101)
    assert exc.value.http_status == 402 and exc.value.code == "insufficient_funds"
    with pytest.raises(InsufficientFundsError):
        ledger.transfer("r", "q", 101, "t")
    with pytest.raises(EscrowStateError):
        ledger.refund("nope")
    ledger.lock("j", "r", "p", 100)
    with pytest.raises(EscrowStateError):
        ledger.partial_release("j", 101, "x")
    with pytest.raises(EscrowStateError):
        ledger.release("j", 101)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValidationError):
            ledger.mint("r", bad, f"bad{bad}")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ledger.mint("@issuance", 5, "steal")
    with pytest.raises(ValidationError):
        ledger.split("j", 10_001)
    assert ledger.total_supply() == 100 and ledger.locked_for("j") == 100
    # The refused lock's key was never consumed: the same job id can lock once funds exist.
    ledger.verify_books()


def test_a_failure_inside_the_transaction_leaves_nothing(engine) -> None:  # type: ignore[no-untyped-def]
    ok = SqlEscrowBackend(engine)
    ok.mint("r", 100, "m")

    def boom(kind: str) -> None:
        raise InjectedFault(kind)

    bad = SqlEscrowBackend(engine, fault=boom)
    with pytest.raises(InjectedFault):
        bad.lock("j", "r", "p", 60)
    with pytest.raises(InjectedFault):
        bad.mint("r", 5, "m2")
    assert ok.balance_of("r") == 100 and ok.locked_for("j") == 0 and ok.total_supply() == 100
    ok.lock("j", "r", "p", 60)  # the retry after the crash does it exactly once
    ok.mint("r", 5, "m2")
    assert ok.balance_of("r") == 45 and ok.total_supply() == 105
    ok.verify_books()


def test_verify_books_detects_a_tampered_balance(ledger: SqlEscrowBackend, engine) -> None:  # type: ignore[no-untyped-def]
    ledger.mint("r", 100, "m")
    from sqlalchemy.orm import Session

    with Session(engine) as s, s.begin():
        s.get(m.LedgerAccount, "r").balance = 101  # type: ignore[union-attr]
    with pytest.raises(AssertionError):
        ledger.verify_books()


def test_store_failures_are_typed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hcp.store.db import connect

    eng = connect(f"sqlite:///{tmp_path / 'empty.db'}")  # never migrated: no tables
    with pytest.raises(StoreError):
        SqlEscrowBackend(eng).mint("r", 1, "m")
