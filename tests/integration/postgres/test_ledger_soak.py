"""The SQL ledger's hypothesis machine at length: thousands of random sequences with crashes
and failing transactions on SQLite, and a pass on PostgreSQL; the books balance after every
step (tests/unit/marketplace/ledger_machine.py)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.unit.marketplace.test_ledger_stateful import (
    run_postgres_machine,
    run_sqlite_machine,
    workdir,  # noqa: F401 -- fixture
)

SOAK = int(os.environ.get("HCP_LEDGER_SOAK_EXAMPLES", "1000"))


def test_sqlite_ledger_books_balance_over_thousands_of_sequences(workdir: Path) -> None:  # noqa: F811
    run_sqlite_machine(workdir, SOAK)


def test_postgres_ledger_books_always_balance() -> None:
    run_postgres_machine(25)
