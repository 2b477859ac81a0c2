"""A migrated SQLite store per test (copied from one template), the real marketplace on it
with a hand-driven clock, and an agent over fake Engine and image ports."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hcp.agent.agent import ProviderAgent
from hcp.agent.leases import LocalGpuLease
from hcp.agent.local_market import LocalMarketplace
from hcp.agent.messages import Slot
from hcp.agent.settings import AgentSettings
from hcp.agent.spec import Identity
from hcp.agent.store import SqlRunStore
from hcp.auth.tokens import Principal, Role
from hcp.config import Settings
from hcp.marketplace.escrow_backend import ONE_TOKEN
from hcp.marketplace.offers import OfferSpec
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from hcp.store.db import connect, migrate
from tests.unit.agent.fakes import FakeContainers, FakeImages, InlineExecutor, ManualClock

PROVIDER = Principal("prov", Role.PROVIDER)
RENTER = Principal("rent", Role.CUSTOMER)
CID = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
PRICE = 3600 * ONE_TOKEN  # one token per second

_TEMPLATE: list[Path] = []


def _template() -> Path:
    if not _TEMPLATE:
        path = Path(tempfile.mkdtemp(prefix="hcp-agent-schema-")) / "template.db"
        engine = connect(f"sqlite:///{path}")
        migrate(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        _TEMPLATE.append(path)
    return _TEMPLATE[0]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    shutil.copyfile(_template(), tmp_path / "hcp.db")
    eng = connect(f"sqlite:///{tmp_path / 'hcp.db'}")
    yield eng
    eng.dispose()


@dataclass
class World:
    clock: ManualClock
    service: MarketplaceService
    ledger: SqlEscrowBackend
    runs: SqlRunStore
    containers: FakeContainers
    images: FakeImages
    gpus: LocalGpuLease
    offer_id: str
    settings: AgentSettings

    def agent(self, agent_id: str = "node-1") -> ProviderAgent:
        return ProviderAgent(Identity(agent_id, PROVIDER.subject), [Slot(self.offer_id, "gpu-0", None, "H100")],
                             LocalMarketplace(self.service, PROVIDER.subject), self.containers,
                             self.images, self.runs, self.gpus, self.settings, self.clock,
                             executor=InlineExecutor())

    def job(self, seconds: int = 600) -> str:
        return self.service.create_job(RENTER, self.offer_id, CID, seconds).id

    def status(self, job_id: str) -> str:
        return self.service.get_job(RENTER, job_id).status.value


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[World]:
    clock = ManualClock()
    ledger = SqlEscrowBackend(engine)
    service = MarketplaceService(engine, ledger, Settings(home=tmp_path, jwt_secret="s" * 40), clock)
    ledger.mint(RENTER.subject, 10_000 * ONE_TOKEN, "fund")
    offer = service.register_offer(PROVIDER, OfferSpec("H100", 2, 4, 10, PRICE, "lab"))
    settings = AgentSettings(metrics_interval_seconds=3600, drain_timeout_seconds=5,
                             stop_grace_seconds=0)
    containers = FakeContainers(clock)
    w = World(clock, service, ledger, SqlRunStore(engine), containers, FakeImages(),
              LocalGpuLease(), offer.id, settings)
    yield w
    containers.down = False
    containers.wake()
