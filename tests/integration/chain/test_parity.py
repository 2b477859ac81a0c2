"""One marketplace, two ledgers: the same jobs settle to the same balances and the same score on
the SQL marketplace (the embedded default), on that marketplace over the chain escrow, and on the
Marketplace contract on anvil (issue 14, item 3).

Each job is driven through the three with the same timeline: the SQL services run on hand-driven
clocks, and on anvil each step that bills is mined at the block time the timeline names. After
every job the renter's, the provider's and the platform's balances, the job's final cost, the
tokens still escrowed and the provider's score must agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from hcp.auth.tokens import Principal, Role
from hcp.config import Settings
from hcp.marketplace.chain.escrow_backend import ChainEscrowBackend
from hcp.marketplace.chain.market import ChainMarketplace, Outcome
from hcp.marketplace.chain.stack import ChainStack
from hcp.marketplace.escrow_backend import ONE_TOKEN, EscrowBackend
from hcp.marketplace.jobs import DisputeOutcome
from hcp.marketplace.offers import OfferSpec
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from hcp.store.db import connect, migrate
from tests.unit.marketplace.conftest import ManualClock

CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
# An awkward price: every cost, fee and refund below has a remainder to floor.
PRICE = 7 * ONE_TOKEN + 333_333_333_333_333_337
FUNDS = 1000 * ONE_TOKEN
PROV, RENTER = Principal("prov", Role.PROVIDER), Principal("renter", Role.CUSTOMER)
ORACLE = Principal("oracle-1", Role.CUSTOMER)
OUTCOMES = {DisputeOutcome.PROVIDER_FAULT: Outcome.PROVIDER_FAULT,
            DisputeOutcome.USER_FAULT: Outcome.USER_FAULT,
            DisputeOutcome.INCONCLUSIVE: Outcome.INCONCLUSIVE}


@dataclass(frozen=True)
class Job:
    """One job's timeline. ``end``: complete | stop | cancel | cancel_accepted | a dispute outcome."""

    name: str
    estimate: int
    run: int = 0                # seconds between the start and the step that ends the job
    end: str | DisputeOutcome = "complete"
    usage: int | None = None    # the provider's reported usage on completion
    dispute_before_start: bool = False


JOBS = [
    Job("worked-example", 3600, run=2700),
    Job("usage-below-clock", 3600, run=2000, usage=1001),
    Job("past-estimate", 1800, run=9000),
    Job("renter-stops", 7200, run=613, end="stop"),
    Job("cancel-created", 3600, end="cancel"),
    Job("cancel-accepted", 3600, end="cancel_accepted"),
    Job("lost-dispute", 3600, run=1200, end=DisputeOutcome.PROVIDER_FAULT),
    Job("renter-at-fault", 5400, run=100, end=DisputeOutcome.USER_FAULT),
    Job("inconclusive-before-start", 2999, end=DisputeOutcome.INCONCLUSIVE, dispute_before_start=True),
    Job("one-second", 3600, run=1),
]


@dataclass
class SqlSide:
    """The marketplace service (its own job records) over one escrow ledger."""

    service: MarketplaceService
    escrow: EscrowBackend
    clock: ManualClock
    offer_id: str

    def run(self, job: Job) -> int:
        s, c = self.service, self.clock
        jid = s.create_job(RENTER, self.offer_id, CID, job.estimate).id
        if job.end == "cancel":
            return s.cancel(RENTER, jid).final_cost or 0
        s.accept(PROV, jid)
        if job.end == "cancel_accepted":
            return s.cancel(RENTER, jid).final_cost or 0
        if isinstance(job.end, DisputeOutcome):
            if not job.dispute_before_start:
                s.start(PROV, jid)
                c.advance(job.run)
            s.dispute(RENTER, jid, "the job failed")
            return s.resolve(ORACLE, jid, job.end).final_cost or 0
        s.start(PROV, jid)
        c.advance(job.run)
        if job.end == "stop":
            return s.stop(RENTER, jid).final_cost or 0
        return s.complete(PROV, jid, usage_seconds=job.usage).final_cost or 0

    def score(self) -> int:
        return self.service.reputation(PROV.subject).score


@dataclass
class ContractSide:
    """The Marketplace contract's own lifecycle on anvil."""

    stack: ChainStack
    resource_id: str

    def run(self, job: Job) -> int:
        m, client = self.stack.market, self.stack.client
        m.create_job(job.name, "renter", self.resource_id, CID, job.estimate)
        if job.end == "cancel":
            m.cancel(job.name, "renter")
            return m.job(job.name).final_cost  # type: ignore[union-attr]
        m.accept(job.name, "prov")
        if job.end == "cancel_accepted":
            m.cancel(job.name, "renter")
            return m.job(job.name).final_cost  # type: ignore[union-attr]
        if isinstance(job.end, DisputeOutcome):
            if not job.dispute_before_start:
                m.start(job.name, "prov")
                client.set_next_block_timestamp(m.job(job.name).start_time + job.run)  # type: ignore[union-attr]
            m.dispute(job.name, "renter", "the job failed")
            return m.resolve(job.name, OUTCOMES[job.end]).final_cost
        m.start(job.name, "prov")
        client.set_next_block_timestamp(m.job(job.name).start_time + job.run)  # type: ignore[union-attr]
        if job.end == "stop":
            return m.stop(job.name, "renter").final_cost
        return m.complete(job.name, "prov", usage_seconds=job.usage).final_cost

    def score(self) -> int:
        return self.stack.market.reputation("prov")


def _service(engine: Engine, escrow: EscrowBackend, home: Path) -> SqlSide:
    settings = Settings(home=home, jwt_secret="s" * 40, marketplace_oracles=[ORACLE.subject])
    service = MarketplaceService(engine, escrow, settings, ManualClock())
    escrow.mint("renter", FUNDS, "parity-faucet")
    offer = service.register_offer(PROV, OfferSpec("H100", 26, 80, 2000, PRICE, "us-east"))
    return SqlSide(service, escrow, service.clock, offer.id)  # type: ignore[arg-type]


Row = tuple[str, int, int, int, int, int, int]


def _ledger(side: SqlSide | ContractSide, escrow: EscrowBackend) -> list[Row]:
    """Run every job; after each: (job, final cost, renter, provider, platform, escrowed, score)."""
    rows = []
    for job in JOBS:
        cost = side.run(job)
        rows.append((job.name, cost, escrow.balance_of("renter"), escrow.balance_of("prov"),
                     escrow.balance_of("platform"), escrow.escrowed_total(), side.score()))
    assert escrow.total_supply() == (sum(escrow.balance_of(a) for a in escrow.accounts())
                                     + escrow.escrowed_total() + escrow.staked_total())
    return rows


def _engine(path: Path) -> Engine:
    eng = connect(f"sqlite:///{path}")
    migrate(eng)
    return eng


def test_the_same_jobs_settle_the_same_on_sql_and_on_anvil(anvil_stack: ChainStack, tmp_path: Path) -> None:
    sql_engine, mirror_engine = _engine(tmp_path / "sql.db"), _engine(tmp_path / "over-chain.db")
    try:
        sql = _service(sql_engine, SqlEscrowBackend(sql_engine), tmp_path)
        expected = _ledger(sql, sql.escrow)

        # Each chain side starts from the same empty chain.
        client = anvil_stack.client
        empty = client.snapshot()
        over_chain = _service(mirror_engine, anvil_stack.escrow, tmp_path)
        assert _ledger(over_chain, anvil_stack.escrow) == expected
        client.revert_to(empty)

        # A new backend: the old one remembers accounts it labelled and funded before the revert.
        escrow = ChainEscrowBackend(client, anvil_stack.contracts, anvil_stack.keys, anvil_stack.operator)
        stack = ChainStack(client, anvil_stack.contracts, anvil_stack.keys, anvil_stack.operator, escrow,
                           ChainMarketplace(escrow))
        escrow.mint("renter", FUNDS, "parity-faucet")
        contract = ContractSide(stack, stack.market.register_resource("prov", "H100", 26, 80, 2000, PRICE))
        assert _ledger(contract, escrow) == expected
    finally:
        sql_engine.dispose()
        mirror_engine.dispose()

    # The timeline is not trivial: every kind of ending moved money, and the score moved too.
    by_job = {row[0]: row for row in expected}
    assert by_job["worked-example"][1] == PRICE * 2700 // 3600
    assert by_job["usage-below-clock"][1] == PRICE * 1001 // 3600
    assert by_job["past-estimate"][1] == PRICE * 1800 // 3600
    assert by_job["renter-stops"][1] == PRICE * 613 // 3600
    assert by_job["cancel-accepted"][1] == 0 and by_job["lost-dispute"][1] == 0
    assert by_job["renter-at-fault"][1] == PRICE * 5400 // 3600  # what was locked
    assert by_job["inconclusive-before-start"][1] == (PRICE * 2999 // 3600) * 5000 // 10_000
    assert [row[6] for row in expected][-1] < 1000
    assert expected[-1][5] == 0  # nothing left in escrow
    paid = sum(row[1] for row in expected)
    assert expected[-1][3] + expected[-1][4] == paid and expected[-1][2] == FUNDS - paid
