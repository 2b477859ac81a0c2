"""Marketplace fixtures: a migrated store, the SQL ledger, a service with a hand-driven clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from hcp.auth.tokens import Principal, Role
from hcp.config import Settings
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from hcp.store.db import connect, migrate


class ManualClock:
    def __init__(self) -> None:
        self.t = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t

    def monotonic(self) -> float:
        return self.t.timestamp()

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = connect(database_url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    eng = connect(f"sqlite:///{tmp_path / 'mk.db'}")
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(home=tmp_path, jwt_secret="s" * 40, marketplace_oracles=["oracle-1"])


@pytest.fixture
def ledger(engine: Engine) -> SqlEscrowBackend:
    return SqlEscrowBackend(engine)


@pytest.fixture
def service(engine: Engine, ledger: SqlEscrowBackend, settings: Settings,
            clock: ManualClock) -> MarketplaceService:
    return MarketplaceService(engine, ledger, settings, clock)


PROVIDER = Principal("prov", Role.PROVIDER)
RENTER = Principal("rent", Role.CUSTOMER)
ADMIN = Principal("root", Role.ADMIN)
ORACLE = Principal("oracle-1", Role.CUSTOMER)
CID = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
