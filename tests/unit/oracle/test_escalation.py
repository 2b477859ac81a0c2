"""Warn, suspect, penalise, slash: the provider's state machine over confirmed findings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.oracle.escalation import (
    Decision,
    EscalationPolicy,
    PenaltyReason,
    ProviderState,
    Standing,
    penalty_id,
)
from hcp.oracle.findings import Check, Finding, Observation, Outcome
from hcp.oracle.quorum import QuorumBook
from hcp.oracle.settings import OracleSettings
from tests.unit.images.conftest import ManualClock

T0 = datetime(2026, 12, 1, tzinfo=UTC)
P = "prov-a"


class Run:
    """One provider's standing stepped through findings, penalties collected."""

    def __init__(self, s: OracleSettings | None = None) -> None:
        self.policy = EscalationPolicy(s or OracleSettings())
        self.standing = self.policy.initial(P, T0)
        self.decisions: list[Decision] = []
        self.n = 0

    def find(self, outcome: Outcome | None, check: Check = Check.POSSESSION,
             subject: str | None = None) -> Decision:
        self.n += 1
        f = Finding(P, check, subject or f"possession:r{self.n}", outcome, ("val-0", "val-1"),
                    (), T0 + timedelta(minutes=self.n))
        d = self.policy.step(self.standing, f)
        self.standing = d.after
        self.decisions.append(d)
        return d

    @property
    def penalties(self):  # type: ignore[no-untyped-def]
        return [p for d in self.decisions for p in d.penalties]


def test_data_fraud_warns_first_then_costs_200_and_a_slash() -> None:
    r = Run()
    d = r.find(Outcome.DATA_FRAUD)
    assert d.penalties == () and d.after.state is ProviderState.SUSPECT and not d.after.offerable
    [w] = d.warnings
    assert (w.outcome, w.strikes, w.strikes_to_penalty) == (Outcome.DATA_FRAUD, 1, 2)
    assert r.policy.challenge_interval_seconds(d.after.state) == 60  # re-checked sooner
    d = r.find(Outcome.DATA_FRAUD)
    [p] = d.penalties
    assert (p.reason, p.points, p.slash_bps) == (PenaltyReason.DATA_FRAUD, 200, 1000)
    assert p.penalty_id == penalty_id(P, d.finding.finding_id, PenaltyReason.DATA_FRAUD)
    assert [q.reason for q in r.find(Outcome.DATA_FRAUD).penalties] == [PenaltyReason.DATA_FRAUD]


def test_downtime_costs_50_at_once_and_the_provider_is_down_until_back() -> None:
    r = Run()
    d = r.find(Outcome.DOWNTIME, Check.HEARTBEAT, "down:7")
    [p] = d.penalties
    assert (p.reason, p.points, p.slash_bps) == (PenaltyReason.DOWNTIME, 50, 0)
    assert d.after.state is ProviderState.DOWN and r.policy.challenge_interval_seconds(
        ProviderState.DOWN) is None
    # while down, challenge timeouts are the outage, not a second fault
    assert r.find(Outcome.TIMEOUT).penalties == () and r.standing.state is ProviderState.DOWN
    assert r.find(Outcome.DOWNTIME, Check.HEARTBEAT, "down:7b").penalties == ()
    d = r.find(Outcome.OK, Check.HEARTBEAT, "up:7")
    assert d.after.state is ProviderState.SUSPECT
    for _ in range(2):
        r.find(Outcome.OK)
    assert r.standing.state is ProviderState.SUSPECT
    r.find(Outcome.OK)
    assert r.standing.state is ProviderState.HEALTHY and r.standing.strikes == ()
    assert len(r.penalties) == 1


def test_brief_unreachability_is_contained_not_punished_like_fraud() -> None:
    r = Run()
    d = r.find(Outcome.TIMEOUT)
    assert d.penalties == () and d.after.state is ProviderState.SUSPECT and d.warnings
    r.find(Outcome.OK)  # it answered the re-check
    assert r.find(Outcome.TIMEOUT).penalties == ()
    [p] = r.find(Outcome.TIMEOUT).penalties  # the third confirmed timeout
    assert (p.reason, p.points, p.slash_bps) == (PenaltyReason.TIMEOUT, 20, 0)
    assert all(p.reason is not PenaltyReason.DATA_FRAUD for p in r.penalties)


def test_never_answering_while_alive_ends_up_as_failed_possession() -> None:
    r = Run()
    reasons = [[p.reason for p in r.find(Outcome.TIMEOUT).penalties] for _ in range(6)]
    assert reasons[:2] == [[], []] and reasons[2:5] == [[PenaltyReason.TIMEOUT]] * 3
    assert reasons[5] == [PenaltyReason.TIMEOUT, PenaltyReason.DATA_FRAUD]
    assert r.penalties[-1].slash_bps == 1000


def test_bad_signatures_warn_then_penalise() -> None:
    r = Run()
    assert r.find(Outcome.BAD_SIGNATURE).penalties == ()
    [p] = r.find(Outcome.BAD_SIGNATURE).penalties
    assert (p.reason, p.points) == (PenaltyReason.INVALID_SIG, 50)


def test_passes_clear_a_suspect_and_its_strikes() -> None:
    r = Run()
    r.find(Outcome.DATA_FRAUD)
    for _ in range(3):
        r.find(Outcome.OK)
    assert r.standing.state is ProviderState.HEALTHY and r.standing.offerable
    assert r.find(Outcome.DATA_FRAUD).penalties == ()  # a warning again, not a penalty


def test_an_agreed_full_hour_counts_as_a_pass() -> None:
    r = Run()
    r.find(Outcome.TIMEOUT)
    for h in range(3):
        r.find(Outcome.OK, Check.HEARTBEAT, f"report:{h}")
    assert r.standing.state is ProviderState.HEALTHY


def test_unconfirmed_and_repeated_findings_change_nothing() -> None:
    r = Run()
    d = r.find(None)
    assert d.after == d.before and d.penalties == ()
    r.find(Outcome.DATA_FRAUD)
    d = r.find(Outcome.DATA_FRAUD, subject="possession:x")
    assert d.penalties
    again = r.policy.step(r.standing, d.finding)
    assert again.duplicate and again.penalties == () and again.after == r.standing
    assert r.standing.version == 2


def test_a_finding_about_another_provider_is_a_bug() -> None:
    r = Run()
    with pytest.raises(ValueError):
        r.policy.step(r.standing, Finding("other", Check.POSSESSION, "s", Outcome.OK, (), (), T0))


def test_penalty_ids_depend_on_the_finding_and_reason_only() -> None:
    a = penalty_id(P, "fnd_1", PenaltyReason.DATA_FRAUD)
    assert a == penalty_id(P, "fnd_1", PenaltyReason.DATA_FRAUD)
    assert len({a, penalty_id(P, "fnd_2", PenaltyReason.DATA_FRAUD),
                penalty_id(P, "fnd_1", PenaltyReason.TIMEOUT),
                penalty_id("prov-b", "fnd_1", PenaltyReason.DATA_FRAUD)}) == 4


def _pipeline(votes: list[tuple[str, str, Outcome]], k: int = 2) -> tuple[Standing, list]:  # type: ignore[type-arg]
    clock = ManualClock(T0)
    book = QuorumBook(["val-0", "val-1", "val-2"], k, 300, clock)
    policy = EscalationPolicy(OracleSettings())
    standing = policy.initial(P, T0)
    penalties = []
    for v, subject, outcome in votes:
        clock.advance(seconds=1)
        check = Check.HEARTBEAT if outcome in (Outcome.DOWNTIME,) else Check.POSSESSION
        f = book.add(Observation(v, P, check, subject, outcome, clock.now()))
        for found in ([f] if f else []) + book.close_expired():
            d = policy.step(standing, found)
            standing = d.after
            penalties += d.penalties
    return standing, penalties


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["r1", "r2", "r3", "r4", "r5"]),
                          st.sampled_from(list(Outcome)), st.booleans()), max_size=60))
def test_a_lone_lying_validator_changes_nothing(rounds) -> None:  # type: ignore[no-untyped-def]
    """Honest validators vote OK (or miss the round); the liar votes anything, in any order
    (a liar that changes its vote is refused by the book, so it votes once per subject)."""
    votes: list[tuple[str, str, Outcome]] = []
    lied: set[str] = set()
    for subject, lie, honest_voted in rounds:
        if subject not in lied:
            lied.add(subject)
            votes.append(("val-2", subject, lie))
        if honest_voted:
            votes.append(("val-0", subject, Outcome.OK))
    standing, penalties = _pipeline(votes)
    assert penalties == [] and standing.state is ProviderState.HEALTHY


def test_two_honest_validators_do_penalise_a_deleted_image() -> None:
    votes = []
    for r in ("r1", "r2"):
        votes += [("val-2", r, Outcome.OK), ("val-0", r, Outcome.DATA_FRAUD),
                  ("val-1", r, Outcome.DATA_FRAUD)]
    standing, penalties = _pipeline(votes)
    assert [p.reason for p in penalties] == [PenaltyReason.DATA_FRAUD]
    assert standing.state is ProviderState.SUSPECT
