"""Provider reputation rows: read, rescore, and mirror the score onto the provider's offers."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from hcp.clock import Clock
from hcp.marketplace import models as m
from hcp.marketplace import reputation as rep
from hcp.marketplace.views import ReputationView


class ReputationBook:
    def __init__(self, response_max_seconds: int, clock: Clock) -> None:
        self.response_max_seconds = response_max_seconds
        self.clock = clock

    def row(self, s: Session, provider: str) -> m.Reputation:
        """The provider's row, locked for update; created at the full score on first use."""
        row = s.get(m.Reputation, provider, with_for_update=True)
        if row is None:
            row = m.Reputation(provider=provider, total_jobs=0, completed_jobs=0, disputes=0,
                               accepted_jobs=0, response_seconds_total=0, uptime_seconds=0,
                               expected_seconds=0, penalty=0, bonus=0, score=rep.MAX_SCORE,
                               updated_at=self.clock.now())
            s.add(row)
            s.flush()
        return row

    @staticmethod
    def stats(row: m.Reputation) -> rep.ReputationStats:
        return rep.ReputationStats(
            total_jobs=row.total_jobs, completed_jobs=row.completed_jobs, disputes=row.disputes,
            accepted_jobs=row.accepted_jobs, response_seconds_total=row.response_seconds_total,
            uptime_seconds=row.uptime_seconds, expected_seconds=row.expected_seconds,
            penalty=row.penalty, bonus=row.bonus)

    def rescore(self, s: Session, row: m.Reputation) -> None:
        row.score = rep.score(self.stats(row), self.response_max_seconds)
        row.updated_at = self.clock.now()
        # Copied onto offers so "min reputation" is an indexed filter, not a join.
        s.execute(update(m.Offer).where(m.Offer.provider == row.provider).values(reputation=row.score))

    def view(self, row: m.Reputation) -> ReputationView:
        return ReputationView(provider=row.provider, score=row.score, total_jobs=row.total_jobs,
                              completed_jobs=row.completed_jobs, disputes=row.disputes,
                              penalty=row.penalty, bonus=row.bonus,
                              terms_bps=rep.terms_bps(self.stats(row), self.response_max_seconds))
