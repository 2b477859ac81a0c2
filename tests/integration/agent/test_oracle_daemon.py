"""A third-party provider's ``hcp agent run`` daemon watched by the oracle through the
platform's HTTP API: its heartbeats reach the validator actors, it answers their challenges
about the image of the job it runs from its own block store, a deleted image is warned and
repaired from the platform before any penalty, and a daemon that stops is reported down and
loses 50 points once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from hcp.clock import SystemClock
from hcp.marketplace import models as mk
from hcp.oracle.escalation import PenaltyReason, ProviderState
from hcp.oracle.findings import Check, Outcome
from hcp.oracle.repository import OracleRepository
from tests.integration.agent.conftest import ORACLE_ENV, PROVIDER, Platform
from tests.waiting import wait_until

pytestmark = pytest.mark.oracle


def _repo(p: Platform) -> OracleRepository:
    return OracleRepository(p.deps.marketplace.service.engine, SystemClock())


def _score(p: Platform) -> tuple[int, int]:
    """(penalty points, score): the score has other terms (response, completion) too."""
    with Session(p.deps.marketplace.service.engine) as s:
        row = s.get(mk.Reputation, PROVIDER)
        return (0, 1000) if row is None else (row.penalty, row.score)


def _possession(p: Platform) -> list[Outcome]:
    return [o.outcome for o in _repo(p).observations(PROVIDER, Check.POSSESSION)]


def _delete_blocks(store_dir: Path) -> int:
    n = 0
    for f in store_dir.rglob("*"):
        if f.is_file():
            f.unlink()
            n += 1
    return n


def test_the_daemon_is_watched_warned_repaired_and_reported_down(
        platform: Platform, tiny_archive: tuple[bytes, str]) -> None:
    p = platform
    offer = p.offer()
    cid = p.upload(tiny_archive[0])
    daemon = p.daemon(offer, "watched-1", env=ORACLE_ENV)
    job = p.instance(offer, cid, 600, "sleep 300")["id"]
    wait_until(lambda: p.get(job)["state"] == "running", timeout=90)

    # Alive and holding its image: the standing says so over the API.
    wait_until(lambda: _possession(p).count(Outcome.OK) >= 3, timeout=60)
    view: dict[str, Any] = p.call("GET", f"/api/v1/oracle/providers/{PROVIDER}", "alice")
    assert view["state"] == "healthy" and view["offerable"] and view["penalties"] == []

    # The daemon's store loses the image (the container keeps running from Docker's copy):
    # the next round fails, the provider is warned and suspect, and the daemon repairs its
    # store from the platform before the re-check; no points are lost.
    assert _delete_blocks(p.home / "watched-1" / "images" / "agent") > 0
    wait_until(lambda: Outcome.DATA_FRAUD in _possession(p), timeout=60)
    wait_until(lambda: (st := _repo(p).standing(PROVIDER)) is not None
               and st.state is ProviderState.SUSPECT, timeout=30)
    wait_until(lambda: (st := _repo(p).standing(PROVIDER)) is not None
               and st.state is ProviderState.HEALTHY, timeout=90)  # 3 clean rounds
    assert _repo(p).penalties(PROVIDER) == [] and _score(p)[0] == 0

    # The daemon dies: past the 4th missed heartbeat, down and -50, once.
    daemon.kill()
    daemon.wait(10)
    score = _score(p)[1]
    wait_until(lambda: _score(p)[0] == 50, timeout=30)
    assert _score(p)[1] <= score - 50
    [pen] = _repo(p).penalties(PROVIDER)
    assert pen.reason is PenaltyReason.DOWNTIME
    view = p.call("GET", f"/api/v1/oracle/providers/{PROVIDER}", "alice")
    assert view["state"] == "down" and not view["offerable"]
    gpus = p.call("GET", "/api/v1/gpus", "alice")["items"]
    assert offer not in [g["id"] for g in gpus]  # not offered to new renters while down
