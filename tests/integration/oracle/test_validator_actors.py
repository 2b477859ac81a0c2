"""The oracle as the platform runs it: three validator actors and their coordinator on Ray,
PostgreSQL, the escrow-ledger actor holding the provider's stake, and a provider's
``OracleLink`` talking to them through ``RayOracle`` (what the agent actor does), answering
challenges from a real block store holding a real image of a running job.

Time is real, so the cadences are short: a heartbeat a second, challenges every few seconds.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import ray
from sqlalchemy.orm import Session

from actors.escrow import RemoteEscrow, launch_escrow_ledger
from actors.options import validator_actor_name
from actors.validator import RayOracle, launch_oracle, stop_oracle
from hcp.agent.oracle import OracleLink
from hcp.auth.tokens import Principal, Role
from hcp.clock import SystemClock
from hcp.config import Settings
from hcp.images.catalog import ImageCatalog
from hcp.images.cids import parse_cid
from hcp.images.service import ImageService
from hcp.images.store.embedded import EmbeddedStore
from hcp.marketplace import models as mk
from hcp.marketplace.escrow_backend import ONE_TOKEN
from hcp.marketplace.offers import OfferSpec
from hcp.marketplace.service import MarketplaceService
from hcp.oracle.escalation import PenaltyReason, ProviderState
from hcp.oracle.findings import Check, Outcome
from hcp.oracle.identities import IdentityBook
from hcp.oracle.repository import OracleRepository
from hcp.oracle.settings import OracleSettings
from hcp.oracle.signing import Signer
from hcp.store.db import engine_for, migrate
from tests.conftest import fresh_postgres_database
from tests.unit.images.archives import classic_archive, image_parts
from tests.waiting import wait_until

STAKE = 500 * ONE_TOKEN


@dataclass
class Oracle:
    settings: Settings
    engine: Any
    repo: OracleRepository
    coordinator: Any
    validators: dict[str, Any]
    ledger: RemoteEscrow
    market: MarketplaceService
    jobs: dict[str, str] = field(default_factory=dict)  # provider -> its running job

    def port(self) -> RayOracle:
        return RayOracle(self.settings, IdentityBook(self.engine, SystemClock(), ttl_seconds=0))

    def score(self, provider: str) -> tuple[int, int]:
        with Session(self.engine) as s:
            row = s.get(mk.Reputation, provider)
            return (0, 1000) if row is None else (row.penalty, row.score)


@pytest.fixture
def oracle(ray_session: None, tmp_path: Path) -> Iterator[Oracle]:
    with fresh_postgres_database() as url:
        settings = Settings(
            home=tmp_path / "home", database_url=url,
            ray_namespace=f"hcp-orc-{uuid.uuid4().hex[:6]}",
            oracle=OracleSettings(heartbeat_interval_seconds=1, heartbeat_grace_seconds=1,
                                  heartbeat_max_age_seconds=5, tick_seconds=0.2,
                                  challenge_poll_seconds=0.3, challenge_interval_seconds=2,
                                  suspect_challenge_interval_seconds=1, vote_window_seconds=10))
        engine = engine_for(url)
        migrate(engine)
        ledger_handle = launch_escrow_ledger(settings)
        coordinator, validators = launch_oracle(settings)
        ledger = RemoteEscrow(handle=ledger_handle)
        try:
            yield Oracle(settings, engine, OracleRepository(engine, SystemClock()), coordinator,
                         validators, ledger, MarketplaceService(engine, ledger, settings))
        finally:
            stop_oracle(coordinator, validators)
            ray.kill(ledger_handle, no_restart=True)
            engine.dispose()


class LinkThread:
    def __init__(self, link: OracleLink) -> None:
        self.link = link
        self.stop = threading.Event()
        self.thread = threading.Thread(target=link.run, args=(self.stop, 0.1), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def _provider(o: Oracle, name: str, store: EmbeddedStore | None = None) -> LinkThread:
    signer = Signer.generate(name)
    blocks = store.get_block if store is not None else (lambda cid: b"")
    return LinkThread(OracleLink(signer, o.port(), blocks, o.settings.oracle, SystemClock()))


def _running_job(o: Oracle, provider: str, store: EmbeddedStore) -> str:
    """A real image in the provider's store and the platform's catalogue, run by a job."""
    config, layers = image_parts(provider)
    svc = ImageService(store, ImageCatalog(o.engine))
    _, info = svc.push_archive(io.BytesIO(classic_archive(config, layers, [f"{provider}:1"])),
                               "alice")
    who = Principal(provider, Role.PROVIDER)
    offer = o.market.register_offer(who, OfferSpec("H100", 4, 16, 100, 3600 * ONE_TOKEN, "lab")).id
    o.ledger.mint("alice", 10_000 * ONE_TOKEN, f"fund-alice-{provider}")
    job = o.market.create_job(Principal("alice", Role.CUSTOMER), offer, info.cid, 3600).id
    o.market.accept(who, job)
    o.market.start(who, job)
    o.jobs[provider] = job
    return info.cid


def test_a_provider_that_stops_its_agent_is_down_and_loses_50_once(oracle: Oracle) -> None:
    o = oracle
    t = _provider(o, "prov-stops")
    try:
        # Alive: every validator accepts its heartbeats.
        wait_until(lambda: len(o.repo.heartbeats("prov-stops", _epoch(), _far())) >= 3, timeout=30)
        assert o.score("prov-stops") == (0, 1000)
    finally:
        t.close()
    # Stopped: past 3 missed heartbeats (4 x 1 s + 1 s grace) the validators vote, k agree.
    wait_until(lambda: o.score("prov-stops") == (50, 950), timeout=30)
    st = o.repo.standing("prov-stops")
    assert st is not None and st.state is ProviderState.DOWN and not st.offerable
    votes = [v for v in o.repo.observations("prov-stops", Check.HEARTBEAT)
             if v.outcome is Outcome.DOWNTIME]
    assert len({v.validator_id for v in votes}) >= 2
    # Killing a validator mid-outage (Ray restarts it; it resumes from the kept heartbeats and
    # votes on the same outage again) applies nothing twice.
    ray.kill(o.validators["val-1"], no_restart=False)
    wait_until(lambda: _answers(o, "val-1"), timeout=60)
    [p] = o.repo.penalties("prov-stops")
    assert (p.reason, p.points) == (PenaltyReason.DOWNTIME, 50)
    assert o.score("prov-stops") == (50, 950)


def test_a_provider_that_deletes_a_running_image_is_warned_then_penalised_and_slashed(
        oracle: Oracle, tmp_path: Path) -> None:
    o = oracle
    store = EmbeddedStore.from_settings(o.settings.model_copy(update={"home": tmp_path / "prov"}),
                                        o.engine)
    cid = _running_job(o, "prov-del", store)
    o.ledger.mint("prov-del", STAKE, "fund-prov-del")
    o.ledger.stake("prov-del", STAKE, "bond-prov-del")
    t = _provider(o, "prov-del", store)
    try:
        # Holding it: rounds pass (each validator issues its own challenge and checks it).
        wait_until(lambda: _outcomes(o, "prov-del").count(Outcome.OK) >= 3, timeout=60)
        assert o.score("prov-del") == (0, 1000)
        # The provider deletes the image it runs (it keeps answering, without the bytes).
        assert store.unpin(parse_cid(cid))
        assert store.gc().removed_blocks > 0
        # First confirmed failure: a warning, suspect (not offered), no points yet; the second,
        # a minute sooner than a healthy provider's next round: -200 and a tenth of the stake.
        wait_until(lambda: o.score("prov-del") == (200, 800), timeout=90)
        st = o.repo.standing("prov-del")
        assert st is not None and st.state is ProviderState.SUSPECT and not st.offerable
        [p] = o.repo.penalties("prov-del")
        assert (p.reason, p.points, p.slash_bps) == (PenaltyReason.DATA_FRAUD, 200, 1000)
        wait_until(lambda: o.repo.penalties(pending_only=True) == [], timeout=30)
        assert o.ledger.stake_of("prov-del").bonded == STAKE - STAKE // 10
    finally:
        t.close()
    books = ray.get(o.ledger._handle().books.remote())
    assert books.residual == 0


def test_a_lone_lying_validator_causes_no_penalty(oracle: Oracle) -> None:
    """val-2 claims an outage the others do not see: recorded, no quorum, no effect."""
    from hcp.oracle.findings import Observation

    o = oracle
    t = _provider(o, "prov-honest")
    try:
        wait_until(lambda: len(o.repo.heartbeats("prov-honest", _epoch(), _far())) >= 2, timeout=30)
        lie = Observation("val-2", "prov-honest", Check.HEARTBEAT, "down:1", Outcome.DOWNTIME,
                          SystemClock().now())
        ray.get(o.coordinator.observe.remote([lie]))
        wait_until(lambda: any(f.outcome is None for f in o.repo.findings("prov-honest")),
                   timeout=30)  # closed after the vote window without a quorum
        assert o.repo.penalties("prov-honest") == [] and o.score("prov-honest") == (0, 1000)
    finally:
        t.close()


def test_a_dispute_is_answered_with_evidence_every_validator_signed(
        oracle: Oracle, tmp_path: Path) -> None:
    from hcp.oracle.evidence import verify_bundle
    from hcp.oracle.identities import Role as IdRole
    from hcp.oracle.identities import RoleRegistry
    from hcp.oracle.signing import Verifier

    o = oracle
    store = EmbeddedStore.from_settings(o.settings.model_copy(update={"home": tmp_path / "p"}),
                                        o.engine)
    _running_job(o, "prov-disp", store)
    job = o.jobs["prov-disp"]
    t = _provider(o, "prov-disp", store)
    try:
        wait_until(lambda: len(o.repo.heartbeats("prov-disp", _epoch(), _far())) >= 2, timeout=30)
        o.market.dispute(Principal("alice", Role.CUSTOMER), job, "no output at all")
        signed = wait_until(lambda: o.repo.evidence(job), timeout=60)
    finally:
        t.close()
    assert [v for v, _ in signed.signatures] == ["val-0", "val-1", "val-2"]
    ids = IdentityBook(o.engine, SystemClock(), ttl_seconds=0)
    sha = verify_bundle(signed, Verifier(RoleRegistry(ids, IdRole.VALIDATOR)), 2,
                        Verifier(RoleRegistry(ids, IdRole.PROVIDER)))
    b = signed.bundle
    assert b.provider_id == "prov-disp" and len(b.heartbeats) >= 2
    assert b.image is not None and b.image.cid == _cid_of(o, job)
    view = o.market.resolve(Principal("root", Role.ADMIN), job, "user_fault", evidence_sha256=sha)
    assert view.status.value == "COMPLETED"


def _cid_of(o: Oracle, job: str) -> str:
    with Session(o.engine) as s:
        return s.get(mk.Job, job).image_cid  # type: ignore[union-attr]


# -- helpers --------------------------------------------------------------------------------

def _epoch() -> Any:
    from datetime import UTC, datetime

    return datetime(2000, 1, 1, tzinfo=UTC)


def _far() -> Any:
    from datetime import UTC, datetime

    return datetime(2100, 1, 1, tzinfo=UTC)


def _answers(o: Oracle, vid: str) -> bool:
    try:
        h = ray.get_actor(validator_actor_name(vid), namespace=o.settings.ray.namespace)
        return ray.get(h.identity.remote(), timeout=5) == vid
    except Exception:  # restarting
        return False


def _outcomes(o: Oracle, provider: str) -> list[Outcome]:
    return [v.outcome for v in o.repo.observations(provider, Check.POSSESSION)]
