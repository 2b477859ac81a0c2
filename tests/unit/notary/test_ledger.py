"""Ledger and economics of honesty, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.errors import ConflictError, ReplayDetectedError, ValidationError
from hcp.notary.economics import penalty_for
from hcp.notary.ledger import ClaimDraft, NotaryLedger, TaskRecord
from hcp.notary.sandbox.base import SandboxOutcome
from hcp.store.db import connect, migrate

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
KEY = "ab" * 32


@pytest.fixture
def ledger(database_url: str) -> NotaryLedger:
    engine = connect(database_url)
    migrate(engine)
    led = NotaryLedger(engine)
    led.create_task(TaskRecord("t1", "accuracy", 0.9, "sha256:" + "0" * 64, 10, 100, NOW,
                               NOW + timedelta(days=1), "active"))
    return led


def draft(miner: str, artifact: str = "sha256:" + "1" * 64, nonce: str | None = None,
          outcome: str = "ok") -> ClaimDraft:
    return ClaimDraft(str(uuid.uuid4()), miner, "t1", 0.95, 0.95, outcome, None, artifact,
                      "file:///x", "00" * 64, NOW.isoformat(), nonce or str(uuid.uuid4()), NOW,
                      0.1)


def new_miner(ledger: NotaryLedger, stake: int = 10_000) -> str:
    mid = str(uuid.uuid4())
    ledger.register_miner(mid, KEY, stake, NOW)
    return mid


def test_register_validates_and_refuses_duplicates(ledger: NotaryLedger) -> None:
    mid = new_miner(ledger)
    with pytest.raises(ConflictError):
        ledger.register_miner(mid, KEY, 1, NOW)
    for bad in [("nope", KEY, 1), (str(uuid.uuid4()), "abc", 1), (str(uuid.uuid4()), KEY, -1)]:
        with pytest.raises(ValidationError):
            ledger.register_miner(*bad, NOW)
    assert ledger.active_public_key(mid) == bytes.fromhex(KEY)
    ledger.revoke_miner(mid, NOW)
    assert ledger.active_public_key(mid) is None


def test_only_first_finder_is_rewarded(ledger: NotaryLedger) -> None:
    a, b = new_miner(ledger), new_miner(ledger)
    first = ledger.record_verified(draft(a), reward=100)
    second = ledger.record_verified(draft(b), reward=100)
    assert first.reward == 100 and first.duplicate_of is None
    assert second.reward == 0 and second.duplicate_of == first.submission_id
    assert ledger.miner(a).balance == 100 and ledger.miner(b).balance == 0


def test_concurrent_duplicates_reward_exactly_once(ledger: NotaryLedger) -> None:
    miners = [new_miner(ledger) for _ in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        claims = list(pool.map(lambda m: ledger.record_verified(draft(m), reward=100), miners))
    assert sum(c.reward for c in claims) == 100
    assert sum(c.duplicate_of is None for c in claims) == 1
    assert sum(ledger.miner(m).balance for m in miners) == 100


def test_nonce_is_unique_forever(ledger: NotaryLedger) -> None:
    mid = new_miner(ledger)
    nonce = str(uuid.uuid4())
    ledger.record_verified(draft(mid, nonce=nonce), reward=1)
    assert ledger.nonce_used(nonce)
    with pytest.raises(ReplayDetectedError):
        ledger.record_verified(draft(mid, artifact="sha256:" + "2" * 64, nonce=nonce), reward=1)
    with pytest.raises(ReplayDetectedError):
        ledger.record_rejected(draft(mid, nonce=nonce), lambda w, s, stake: penalty_for(
            SandboxOutcome.TRAP, w, s, stake, 500))
    assert ledger.miner(mid).balance == 1


def test_first_timeout_warns_then_failures_slash_progressively(ledger: NotaryLedger) -> None:
    mid = new_miner(ledger, stake=10_000)

    def fail(outcome: SandboxOutcome) -> int:
        c = ledger.record_rejected(draft(mid, outcome=outcome.value),
                                   lambda w, s, stake: penalty_for(outcome, w, s, stake, 500))
        return c.slashed

    assert fail(SandboxOutcome.TIMEOUT) == 0
    m = ledger.miner(mid)
    assert m.warnings == 1 and m.stake == 10_000
    assert fail(SandboxOutcome.TIMEOUT) == 500   # 5% of 10000
    assert fail(SandboxOutcome.TRAP) == 950      # 10% of 9500
    assert fail(SandboxOutcome.OK) == 1710       # 20% of 8550 (score mismatch)
    m = ledger.miner(mid)
    assert m.stake == 10_000 - 500 - 950 - 1710 and m.slashed_total == 3160 and m.slashes == 3


@settings(max_examples=60, deadline=None)
@given(stake=st.integers(0, 10**15), slashes=st.integers(0, 40), warnings=st.integers(0, 3),
       base=st.integers(0, 10_000), outcome=st.sampled_from(list(SandboxOutcome)))
def test_penalty_never_exceeds_stake(stake: int, slashes: int, warnings: int, base: int,
                                     outcome: SandboxOutcome) -> None:
    p = penalty_for(outcome, warnings, slashes, stake, base)
    assert 0 <= p.slash <= stake
    assert isinstance(p.slash, int)
    if outcome is SandboxOutcome.TIMEOUT and warnings == 0:
        assert p.warning and p.slash == 0


def test_active_task_is_newest_unexpired(ledger: NotaryLedger) -> None:
    assert ledger.active_task(NOW).task_id == "t1"
    ledger.create_task(TaskRecord("t2", "accuracy", 0.5, "sha256:" + "0" * 64, 10, 1,
                                  NOW + timedelta(seconds=1), NOW + timedelta(hours=1), "active"))
    assert ledger.active_task(NOW + timedelta(minutes=1)).task_id == "t2"
    assert ledger.active_task(NOW + timedelta(hours=2)).task_id == "t1"
    ledger.close_task("t1")
    assert ledger.active_task(NOW + timedelta(hours=2)) is None
