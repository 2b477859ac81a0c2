"""The marketplace's metrics (the catalogue's ``marketplace`` area), read from the books and
the job log rather than counted where each request is served: the escrow-ledger actor, the
one owner of the books, records them on a period, so a job made through any path (HTTP, an
agent, the chain's indexer) counts once, in one process.

- ``jobs_created_total``, ``jobs_completed_total``, ``jobs_disputed_total``: the job events
  with that target status since the recorder started (a cursor over ``mk_job_events.id``; a
  restarted recorder starts at the newest event, so no job counts twice; Prometheus'
  ``increase`` takes the counter's reset in its stride).
- ``hcp_escrow_locked_amount`` and ``hcp_escrow_conservation_residual`` from one reading of
  the books (supply − balances − escrowed − staked: anything but 0 is a bug).
- ``hcp_marketplace_settled_amount_total`` by party (provider, platform, refund) from the
  SQL ledger's settlement transactions after the same kind of cursor.
- ``hcp_provider_reputation_score`` for the most recently updated ``MAX_PROVIDERS``
  providers (a bounded set of series).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, func, select

from hcp.marketplace import models as m
from hcp.marketplace.jobs import JobStatus
from hcp.observability.sink import MetricsSink

MAX_PROVIDERS = 1000
_COUNTED = {JobStatus.CREATED.value: "jobs_created_total",
            JobStatus.COMPLETED.value: "jobs_completed_total",
            JobStatus.DISPUTED.value: "jobs_disputed_total"}
_SETTLING = ("settle", "partial")  # the SQL ledger's transaction kinds that pay out
_PARTIES = {"to_provider": "provider", "to_platform": "platform", "refunded": "refund"}


class MarketplaceRecorder:
    def __init__(self, engine: Engine, books: Callable[[], tuple[int, int]], backend: str,
                 sink: MetricsSink) -> None:
        """``books()``: (escrowed, residual) read together. ``backend``: sql or chain."""
        self._engine = engine
        self._books = books
        self._backend = backend
        self._sink = sink
        self._cursor: int | None = None
        self._settled_cursor: int | None = None

    def record(self) -> None:
        escrowed, residual = self._books()
        self._sink.set("hcp_escrow_locked_amount", escrowed, backend=self._backend)
        self._sink.set("hcp_escrow_conservation_residual", residual, backend=self._backend)
        e = m.JobEvent
        with self._engine.connect() as c:
            newest = c.execute(select(func.max(e.id))).scalar() or 0
            if self._cursor is None:
                # The jobs before the recorder started are history, not news. (A counter's
                # series appears with its first job: Ray's counters cannot be created at 0.)
                self._cursor = newest
            elif newest > self._cursor:
                counts = c.execute(select(e.to_status, func.count())
                                   .where(e.id > self._cursor, e.id <= newest,
                                          e.to_status.in_(list(_COUNTED)))
                                   .group_by(e.to_status)).all()
                for status, n in counts:
                    self._sink.inc(_COUNTED[status], int(n))
                self._cursor = newest
            self._record_settlements(c)
            r = m.Reputation
            for provider, score in c.execute(select(r.provider, r.score)
                                             .order_by(r.updated_at.desc()).limit(MAX_PROVIDERS)):
                self._sink.set("hcp_provider_reputation_score", score, provider=provider)

    def _record_settlements(self, c: Connection) -> None:
        """What settlements paid, by party, from the SQL ledger's committed transactions (the
        chain escrow's settle on chain: none are in this table then)."""
        t = m.LedgerTransaction
        newest = c.execute(select(func.max(t.id))).scalar() or 0
        if self._settled_cursor is None:
            self._settled_cursor = newest
            return
        if newest <= self._settled_cursor:
            return
        sums = dict.fromkeys(_PARTIES, 0)
        for (result,) in c.execute(select(t.result).where(
                t.id > self._settled_cursor, t.id <= newest, t.kind.in_(_SETTLING))):
            for key in _PARTIES:
                sums[key] += int((result or {}).get(key, 0))
        for key, party in _PARTIES.items():
            if sums[key]:
                self._sink.inc("hcp_marketplace_settled_amount_total", sums[key], party=party)
        self._settled_cursor = newest
