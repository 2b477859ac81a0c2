"""k of n: a finding takes effect only when k validators agree; one liar changes nothing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.errors import ConfigError, EquivocationError, UnknownValidatorError
from hcp.oracle.findings import Check, Observation, Outcome
from hcp.oracle.quorum import QuorumBook
from tests.unit.images.conftest import ManualClock

V = ["val-0", "val-1", "val-2"]
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _vote(v: str, outcome: Outcome, subject: str = "possession:r1", provider: str = "p") -> Observation:
    return Observation(v, provider, Check.POSSESSION, subject, outcome, T0)


def test_two_of_three_confirm_and_the_third_is_a_dissent() -> None:
    book = QuorumBook(V, 2, 300, ManualClock(T0))
    assert book.add(_vote("val-0", Outcome.DATA_FRAUD)) is None
    assert book.add(_vote("val-1", Outcome.OK)) is None
    f = book.add(_vote("val-2", Outcome.DATA_FRAUD))
    assert f is not None and f.outcome is Outcome.DATA_FRAUD and f.confirmed
    assert f.agreeing == ("val-0", "val-2") and f.dissenting == (("val-1", Outcome.OK),)
    assert book.add(_vote("val-1", Outcome.OK, "possession:r1")) is None  # decided already
    assert book.open_subjects() == 0


def test_a_lone_liar_never_reaches_a_quorum_and_closes_without_effect() -> None:
    clock = ManualClock(T0)
    book = QuorumBook(V, 2, 300, clock)
    assert book.add(_vote("val-0", Outcome.DATA_FRAUD)) is None
    assert book.add(_vote("val-0", Outcome.DATA_FRAUD)) is None  # a retry counts once
    clock.advance(seconds=299)
    assert book.close_expired() == []
    clock.advance(seconds=1)
    [f] = book.close_expired()
    assert f.outcome is None and not f.confirmed and f.dissenting == (("val-0", Outcome.DATA_FRAUD),)


def test_changing_a_vote_is_refused_and_the_first_stands() -> None:
    book = QuorumBook(V, 2, 300, ManualClock(T0))
    book.add(_vote("val-0", Outcome.OK))
    with pytest.raises(EquivocationError):
        book.add(_vote("val-0", Outcome.DATA_FRAUD))
    assert book.add(_vote("val-1", Outcome.DATA_FRAUD)) is None
    f = book.add(_vote("val-2", Outcome.OK))
    assert f is not None and f.outcome is Outcome.OK


def test_votes_from_outside_the_set_are_refused() -> None:
    book = QuorumBook(V, 2, 300, ManualClock(T0))
    with pytest.raises(UnknownValidatorError):
        book.add(_vote("mallory", Outcome.DATA_FRAUD))


@pytest.mark.parametrize("n,k", [(3, 1), (4, 2), (2, 3), (0, 1)])
def test_a_quorum_must_be_a_majority(n: int, k: int) -> None:
    with pytest.raises(ConfigError):
        QuorumBook([f"v{i}" for i in range(n)], k, 300, ManualClock(T0))


def test_subjects_and_providers_are_counted_apart() -> None:
    book = QuorumBook(V, 2, 300, ManualClock(T0))
    assert book.add(_vote("val-0", Outcome.DOWNTIME, "down:5")) is None
    assert book.add(_vote("val-1", Outcome.DOWNTIME, "down:6")) is None
    assert book.add(_vote("val-1", Outcome.DOWNTIME, "down:5", provider="q")) is None
    assert book.add(_vote("val-2", Outcome.DOWNTIME, "down:5")) is not None


_outcomes = st.sampled_from(list(Outcome))


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 7), data=st.data())
def test_no_finding_without_k_agreeing_validators_in_any_interleaving(n: int, data) -> None:  # type: ignore[no-untyped-def]
    k = data.draw(st.integers(n // 2 + 1, n))
    validators = [f"v{i}" for i in range(n)]
    votes = data.draw(st.lists(st.tuples(st.sampled_from(validators),
                                         st.sampled_from(["s1", "s2"]), _outcomes), max_size=40))
    clock = ManualClock(T0)
    book = QuorumBook(validators, k, 300, clock)
    first: dict[tuple[str, str], Outcome] = {}
    findings = []
    for v, subject, outcome in votes:
        try:
            f = book.add(_vote(v, outcome, subject))
        except EquivocationError:
            assert first[(v, subject)] is not outcome
            continue
        first.setdefault((v, subject), outcome)
        if f is not None:
            findings.append(f)
    clock.advance(seconds=300)
    findings += book.close_expired()
    for f in findings:
        if f.outcome is not None:
            assert len(f.agreeing) >= k and len(set(f.agreeing)) == len(f.agreeing)
            assert all(first[(v, f.subject)] is f.outcome for v in f.agreeing)
    assert len({f.subject for f in findings}) == len(findings)  # each subject decided once


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_decision_does_not_depend_on_the_order_votes_arrive(data) -> None:  # type: ignore[no-untyped-def]
    """One vote per validator per subject, shuffled: the same outcome per subject."""
    n = data.draw(st.integers(1, 6))
    k = data.draw(st.integers(n // 2 + 1, n))
    validators = [f"v{i}" for i in range(n)]
    ballots = [(v, s, data.draw(_outcomes)) for v, s in itertools.product(validators, ["a", "b"])]
    orders = [ballots, data.draw(st.permutations(ballots)), list(reversed(ballots))]
    results = []
    for order in orders:
        clock = ManualClock(T0)
        book = QuorumBook(validators, k, 300, clock)
        got = {}
        for v, s, o in order:
            f = book.add(_vote(v, o, s))
            if f is not None:
                got[s] = f.outcome
        clock.advance(seconds=300)
        for f in book.close_expired():
            got[f.subject] = f.outcome
        results.append(got)
    assert results[0] == results[1] == results[2]
