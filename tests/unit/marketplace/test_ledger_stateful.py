"""Thousands of random ledger operation sequences on the SQL ledger, with crashes and failing
transactions; after every step the books balance exactly (see ledger_machine)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, text

from hcp.clock import utcnow
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from hcp.store.db import connect, migrate
from tests.conftest import fresh_postgres_database
from tests.unit.marketplace.ledger_machine import InjectedFault, make_machine

ACCOUNTS = ["alice", "bob", "carol"]
# The unit tier runs a short pass; tests/integration/postgres runs thousands of sequences on
# SQLite and a pass on PostgreSQL. A longer soak: HCP_LEDGER_EXAMPLES=10000.
SQL_EXAMPLES = int(os.environ.get("HCP_LEDGER_EXAMPLES", "60"))


def _raise(kind: str) -> None:
    raise InjectedFault(kind)


class _Clock:
    """The ledger's clock, moved forward by the machine (the unbonding period passes)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: int) -> None:
        self.offset += timedelta(seconds=seconds)


class SqliteHarness:
    """A fresh SQLite ledger per example, copied from one migrated template (fast)."""

    template: Path | None = None

    def __init__(self, workdir: Path) -> None:
        if SqliteHarness.template is None or not SqliteHarness.template.exists():
            SqliteHarness.template = workdir / "template.db"
            eng = connect(f"sqlite:///{SqliteHarness.template}")
            migrate(eng)
            eng.dispose()
        self.path = workdir / f"{uuid.uuid4().hex}.db"
        shutil.copy(SqliteHarness.template, self.path)
        self.accounts = ACCOUNTS
        self.clock = _Clock()
        self._engines: list[Engine] = []

    def _engine(self) -> Engine:
        eng = connect(f"sqlite:///{self.path}")
        self._engines.append(eng)
        return eng

    def backend(self) -> SqlEscrowBackend:
        return SqlEscrowBackend(self._engine(), clock=self.clock)

    def restart(self) -> SqlEscrowBackend:
        # The old process is gone: drop its engine and build everything again from the file.
        for eng in self._engines:
            eng.dispose()
        self._engines.clear()
        return self.backend()

    def faulty(self) -> SqlEscrowBackend:
        return SqlEscrowBackend(self._engine(), fault=_raise, clock=self.clock)

    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    def close(self) -> None:
        for eng in self._engines:
            eng.dispose()
        self.path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # tmpfs when there is one: thousands of tiny commits are I/O-bound on a disk.
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    path = Path(tempfile.mkdtemp(prefix="hcp-ledger-", dir=base))
    SqliteHarness.template = None
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_sqlite_machine(workdir: Path, examples: int) -> None:
    machine = make_machine(lambda: SqliteHarness(workdir))
    machine.TestCase.settings = settings(max_examples=examples, stateful_step_count=30,
                                         deadline=None, suppress_health_check=list(HealthCheck))
    machine.TestCase().runTest()


def test_sql_ledger_books_always_balance(workdir: Path) -> None:
    run_sqlite_machine(workdir, SQL_EXAMPLES)


class PostgresHarness:
    """One PostgreSQL database for the test; each example empties the ledger tables first."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.accounts = ACCOUNTS
        self.clock = _Clock()
        self._engine = connect(url)
        with self._engine.begin() as c:
            c.execute(text("TRUNCATE ledger_entries, ledger_transactions, ledger_escrows, "
                           "ledger_stakes, ledger_accounts CASCADE"))

    def backend(self) -> SqlEscrowBackend:
        return SqlEscrowBackend(self._engine, clock=self.clock)

    def restart(self) -> SqlEscrowBackend:
        self._engine.dispose()
        self._engine = connect(self.url)
        return self.backend()

    def faulty(self) -> SqlEscrowBackend:
        return SqlEscrowBackend(self._engine, fault=_raise, clock=self.clock)

    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    def close(self) -> None:
        self._engine.dispose()


def run_postgres_machine(examples: int = 25) -> None:
    with fresh_postgres_database() as url:
        eng = connect(url)
        migrate(eng)
        eng.dispose()
        machine = make_machine(lambda: PostgresHarness(url))
        machine.TestCase.settings = settings(max_examples=examples, stateful_step_count=20,
                                             deadline=None,
                                             suppress_health_check=list(HealthCheck))
        machine.TestCase().runTest()
