"""Reputation scoring and the job state machine (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcp.errors import JobTransitionError
from hcp.marketplace.jobs import TERMINAL, TRANSITIONS, DisputeOutcome, JobStatus, check_transition
from hcp.marketplace.reputation import ReputationStats, score, terms_bps


def test_formula_weights() -> None:
    assert score(ReputationStats()) == 1000
    # Only uptime at 50%: loses 0.4 * 0.5 * 1000 = 200.
    assert score(ReputationStats(uptime_seconds=50, expected_seconds=100)) == 800
    # Half the jobs failed and disputed: completion 0.5 (−150), disputes 0.5 (−50).
    assert score(ReputationStats(total_jobs=2, completed_jobs=1, disputes=1)) == 800
    # Average accept latency at the maximum: response term 0 (−200).
    assert score(ReputationStats(accepted_jobs=1, response_seconds_total=3600), 3600) == 800
    assert score(ReputationStats(penalty=300, bonus=50)) == 750
    assert score(ReputationStats(penalty=5000)) == 0
    assert score(ReputationStats(bonus=10, uptime_seconds=0, expected_seconds=10)) == 610


@given(st.builds(ReputationStats, total_jobs=st.integers(0, 10**6), completed_jobs=st.integers(0, 10**6),
                 disputes=st.integers(0, 10**6), accepted_jobs=st.integers(0, 1000),
                 response_seconds_total=st.integers(0, 10**9), uptime_seconds=st.integers(0, 10**9),
                 expected_seconds=st.integers(0, 10**9), penalty=st.integers(0, 2000),
                 bonus=st.integers(0, 2000)))
def test_score_is_bounded_and_penalties_never_raise_it(stats: ReputationStats) -> None:
    s = score(stats)
    assert 0 <= s <= 1000
    assert all(0 <= v <= 10_000 for v in terms_bps(stats, 3600).values())
    worse = ReputationStats(**{**stats.__dict__, "penalty": stats.penalty + 1})
    assert score(worse) <= s


def test_seed_state_machine() -> None:
    allowed = {(a, b) for a, nxt in TRANSITIONS.items() for b in nxt}
    assert (JobStatus.CREATED, JobStatus.ACCEPTED) in allowed
    assert (JobStatus.RUNNING, JobStatus.COMPLETED) in allowed
    assert (JobStatus.DISPUTED, JobStatus.RESOLVED) in allowed
    assert (JobStatus.RESOLVED, JobStatus.COMPLETED) in allowed
    assert TERMINAL == {JobStatus.COMPLETED, JobStatus.CANCELLED}
    for a in JobStatus:
        for b in JobStatus:
            if (a, b) in allowed:
                check_transition(a, b, "j")
            else:
                with pytest.raises(JobTransitionError) as exc:
                    check_transition(a, b, "j")
                assert exc.value.http_status == 409
                assert exc.value.code == "invalid_job_transition"
    # No dispute once running is over or before acceptance.
    assert JobStatus.DISPUTED not in TRANSITIONS[JobStatus.CREATED]
    assert JobStatus.CANCELLED not in TRANSITIONS[JobStatus.RUNNING]


def test_dispute_outcomes_map_to_split_bps() -> None:
    assert DisputeOutcome.PROVIDER_FAULT.provider_bps == 0
    assert DisputeOutcome.USER_FAULT.provider_bps == 10_000
    assert DisputeOutcome.INCONCLUSIVE.provider_bps == 5_000


def test_one_dispute_penalty_on_both_ledgers() -> None:
    import re
    from pathlib import Path

    from hcp.config import Settings

    source = (Path(__file__).parents[3] / "contracts/src/Marketplace.sol").read_text()
    on_chain = int(re.search(r"DISPUTE_LOST_PENALTY = (\d+);", source).group(1))  # type: ignore[union-attr]
    assert Settings().marketplace.dispute_penalty == on_chain == 50
