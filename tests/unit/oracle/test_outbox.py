"""A validator's votes survive a store outage: held, then stored and delivered in order once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from hcp.oracle.findings import Check, Observation, Outcome
from hcp.oracle.outbox import VoteOutbox
from hcp.oracle.repository import OracleRepository
from hcp.store.db import connect, migrate
from tests.unit.images.conftest import ManualClock


def _vote(i: int) -> Observation:
    return Observation("val-1", "prov-a", Check.HEARTBEAT, f"downtime:prov-a:{i}", Outcome.DOWNTIME,
                       datetime(2026, 1, 1, tzinfo=UTC))


def test_votes_refused_by_the_store_are_held_and_sent_first_next_time(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'o.db'}")
    migrate(engine)
    repo = OracleRepository(engine, ManualClock())
    delivered: list[list[str]] = []
    box = VoteOutbox(repo.record_observations, lambda vs: delivered.append([v.subject for v in vs]))
    assert box.send([_vote(1)]) == 1
    with engine.begin() as c:  # the store goes away under the validator
        c.execute(text("ALTER TABLE orc_observations RENAME TO orc_observations_away"))
    assert box.send([_vote(2)]) == 0 and box.send([_vote(3)]) == 0
    assert box.held == 2 and delivered == [["downtime:prov-a:1"]]
    with engine.begin() as c:
        c.execute(text("ALTER TABLE orc_observations_away RENAME TO orc_observations"))
    assert box.send([]) == 2
    assert delivered[-1] == ["downtime:prov-a:2", "downtime:prov-a:3"] and box.held == 0
    assert {o.subject for o in repo.observations("prov-a")} == {f"downtime:prov-a:{i}" for i in (1, 2, 3)}
    engine.dispose()


def test_the_outbox_is_bounded(tmp_path: Path) -> None:
    def refuse(_: object) -> None:
        from hcp.errors import StoreError

        raise StoreError("down")

    box = VoteOutbox(refuse, lambda _: None, limit=3)
    for i in range(5):
        box.send([_vote(i)])
    assert box.held == 3 and box.dropped == 2
