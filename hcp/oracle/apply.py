"""Effects of the oracle on the SQL marketplace's reputation, run inside the oracle store's
transaction (``OracleRepository.commit_decision`` / ``commit_agreed``) so each penalty and each
period's uptime reaches a provider's score exactly once.

The chain's ReputationSystem is the other target: there the caller sends each penalty with
its ``penalty_id`` (the contract should refuse an id it has seen) and marks it applied.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from hcp.marketplace.reputation_book import ReputationBook
from hcp.oracle.escalation import Penalty
from hcp.oracle.report import AgreedMeasurement
from hcp.oracle.repository import AgreedEffect, PenaltyEffect


def reputation_penalty(book: ReputationBook) -> PenaltyEffect:
    """Take a penalty's points from the provider's marketplace reputation."""

    def effect(s: Session, p: Penalty) -> None:
        if p.points <= 0:
            return
        row = book.row(s, p.provider_id)
        row.penalty += p.points
        book.rescore(s, row)

    return effect


def reputation_uptime(book: ReputationBook) -> AgreedEffect:
    """Add a period's agreed uptime to the reputation's uptime term (measured, not posted)."""

    def effect(s: Session, a: AgreedMeasurement) -> None:
        if a.expected_seconds <= 0:
            return
        row = book.row(s, a.provider_id)
        row.uptime_seconds += a.up_seconds
        row.expected_seconds += a.expected_seconds
        book.rescore(s, row)

    return effect
