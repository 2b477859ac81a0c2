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
- ``hcp_marketplace_settled_amount_total`` by party (provider, platform, refund) after the
  same kind of cursor: over the SQL ledger's settlement transactions, or with the chain
  escrow over the events the chain indexer stored (``chain_events.id``): PaymentEscrow's
  ``FundsReleased`` (provider amount, platform fee) and ``Refunded``, one of each per payout
  or refund. None are stored where no indexer runs (an in-process chain). A re-org the
  indexer's confirmations did not cover stores a re-mined settlement again, and it counts
  again.
- ``hcp_provider_reputation_score`` for the most recently updated ``MAX_PROVIDERS``
  providers (a bounded set of series).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, func, select

from hcp.marketplace import models as m
from hcp.marketplace.chain.models import ChainEvent
from hcp.marketplace.jobs import JobStatus
from hcp.observability.sink import MetricsSink

MAX_PROVIDERS = 1000
_COUNTED = {JobStatus.CREATED.value: "jobs_created_total",
            JobStatus.COMPLETED.value: "jobs_completed_total",
            JobStatus.DISPUTED.value: "jobs_disputed_total"}
_SETTLING = ("settle", "partial")  # the SQL ledger's transaction kinds that pay out
_PARTIES = {"to_provider": "provider", "to_platform": "platform", "refunded": "refund"}
# PaymentEscrow's events that move money out of an escrow: their amount fields, by party.
_CHAIN_PAYOUTS = {"FundsReleased": {"providerAmount": "provider", "platformFee": "platform"},
                  "Refunded": {"amount": "refund"}}


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
                # The jobs before the recorder started are history, not news. The counters
                # are exported at 0 from here: increase() sees the first job, and a platform
                # that never gets one is an alert (NoJobsCreated), not a missing series.
                self._cursor = newest
                for name in _COUNTED.values():
                    self._sink.inc(name, 0)
                for party in _PARTIES.values():
                    self._sink.inc("hcp_marketplace_settled_amount_total", 0, party=party)
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
        """What settlements paid, by party, from the rows stored since the last reading: the
        SQL ledger's committed transactions, or the chain's indexed events (the chain escrow
        settles on chain: the ledger's table holds none of its settlements)."""
        chain = self._backend == "chain"
        row_id = ChainEvent.id if chain else m.LedgerTransaction.id
        newest = c.execute(select(func.max(row_id))).scalar() or 0
        if self._settled_cursor is None:
            self._settled_cursor = newest
            return
        if newest <= self._settled_cursor:
            return
        after = self._settled_cursor
        paid = _chain_paid(c, after, newest) if chain else _ledger_paid(c, after, newest)
        for party, amount in paid.items():
            if amount:
                self._sink.inc("hcp_marketplace_settled_amount_total", amount, party=party)
        self._settled_cursor = newest


def _ledger_paid(c: Connection, after: int, newest: int) -> dict[str, int]:
    t = m.LedgerTransaction
    paid = dict.fromkeys(_PARTIES.values(), 0)
    for (result,) in c.execute(select(t.result).where(
            t.id > after, t.id <= newest, t.kind.in_(_SETTLING))):
        for key, party in _PARTIES.items():
            paid[party] += int((result or {}).get(key, 0))
    return paid


def _chain_paid(c: Connection, after: int, newest: int) -> dict[str, int]:
    e = ChainEvent
    paid = dict.fromkeys(_PARTIES.values(), 0)
    for event, args in c.execute(select(e.event, e.args).where(
            e.id > after, e.id <= newest, e.contract == "PaymentEscrow",
            e.event.in_(list(_CHAIN_PAYOUTS)))):
        for key, party in _CHAIN_PAYOUTS[event].items():
            paid[party] += int(args[key])  # uint256 stored as decimal strings
    return paid
