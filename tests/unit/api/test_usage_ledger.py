"""The inference usage ledger on SQLite and PostgreSQL: increments add up, per owner and model."""

from __future__ import annotations

import threading

import pytest

from hcp.errors import ValidationError
from hcp.inference.usage import SqlUsageLedger
from hcp.store import connect, migrate


def test_increments_add_up_per_owner_and_model(database_url: str) -> None:
    engine = connect(database_url)
    migrate(engine)
    ledger = SqlUsageLedger(engine)
    assert ledger.totals(None) == {"requests": 0, "input_tokens": 0, "by_model": {}}
    ledger.add("alice", "m1", 1, 10)
    ledger.add("alice", "m1", 2, 5)
    ledger.add("alice", "m2", 1, 7)
    ledger.add("bob", "m1", 4, 40)
    ledger.add("bob", "m1", 0, 0)
    assert ledger.totals("alice") == {
        "requests": 4,
        "input_tokens": 22,
        "by_model": {
            "m1": {"requests": 3, "input_tokens": 15},
            "m2": {"requests": 1, "input_tokens": 7},
        },
    }
    assert ledger.totals(None)["requests"] == 8 and ledger.totals(None)["input_tokens"] == 62
    assert ledger.totals("nobody")["requests"] == 0
    with pytest.raises(ValidationError):
        ledger.add("alice", "m1", -1, 0)


def test_concurrent_increments_are_not_lost(database_url: str) -> None:
    engine = connect(database_url)
    migrate(engine)
    ledger = SqlUsageLedger(engine)

    def work() -> None:
        for _ in range(25):
            ledger.add("carol", "m", 1, 3)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.totals("carol") == {
        "requests": 100,
        "input_tokens": 300,
        "by_model": {"m": {"requests": 100, "input_tokens": 300}},
    }


def test_a_batch_of_owners_is_recorded_whole_or_not_at_all(database_url: str) -> None:
    engine = connect(database_url)
    migrate(engine)
    ledger = SqlUsageLedger(engine)
    ledger.add_many("m1", {"alice": (2, 20), "bob": (1, 9)})
    with pytest.raises(ValidationError):
        ledger.add_many("m1", {"alice": (1, 10), "bob": (1, -1)})
    # A failure inside the transaction (an owner name over the column's size) rolls back
    # the owners already written in it.
    from hcp.errors import StoreError

    if engine.dialect.name == "postgresql":
        with pytest.raises(StoreError):
            ledger.add_many("m1", {"alice": (1, 10), "b" * 10_000: (1, 1)})
    assert ledger.totals("alice")["requests"] == 2 and ledger.totals("bob")["input_tokens"] == 9
    engine.dispose()
