"""The seed's job lifecycle on the Marketplace contract (in-process EVM)."""

from __future__ import annotations

import pytest

from hcp.errors import ChainRevertError, JobTransitionError, ValidationError
from hcp.marketplace.chain.ids import job_key
from hcp.marketplace.chain.market import JobStatus, Outcome
from hcp.marketplace.chain.stack import ChainStack, run_lifecycle
from hcp.marketplace.escrow_backend import ONE_TOKEN

PRICE = 10 * ONE_TOKEN  # 10 tokens per hour


@pytest.fixture
def rig(stack: ChainStack) -> tuple[ChainStack, str]:
    stack.escrow.mint("renter", 100 * ONE_TOKEN, "faucet")
    rid = stack.market.register_resource("prov", "RTX4090", 16, 64, 500, PRICE)
    return stack, rid


def invariant(stack: ChainStack) -> None:
    e = stack.escrow
    assert e.total_supply() == sum(e.balance_of(a) for a in e.accounts()) + e.escrowed_total()
    assert stack.client.call(stack.contracts.token.functions.balanceOf(stack.contracts.escrow.address)) \
        == e.escrowed_total()


def test_full_lifecycle_is_the_seed_worked_example(rig: tuple[ChainStack, str]) -> None:
    stack, rid = rig
    job = run_lifecycle(stack, "job-1", "renter", rid, "prov", estimated_seconds=3600, actual_seconds=2700)
    assert job.status == JobStatus.COMPLETED and job.max_cost == 10 * ONE_TOKEN
    assert job.final_cost == 7_500_000_000_000_000_000 and job.end_time - job.start_time == 2700
    e = stack.escrow
    assert e.balance_of("prov") == 7_350_000_000_000_000_000
    assert e.balance_of("platform") == 150_000_000_000_000_000
    assert e.balance_of("renter") == 90 * ONE_TOKEN + 2_500_000_000_000_000_000
    assert stack.market.resource(rid).total_uptime == 2700
    assert stack.market.reputation("prov") == 1000
    invariant(stack)


def test_run_time_is_capped_at_the_estimate(rig: tuple[ChainStack, str]) -> None:
    stack, rid = rig
    job = run_lifecycle(stack, "long", "renter", rid, "prov", estimated_seconds=1800, actual_seconds=9000)
    assert job.final_cost == 5 * ONE_TOKEN and stack.escrow.balance_of("renter") == 95 * ONE_TOKEN


@pytest.mark.parametrize(("outcome", "paid", "score"), [
    (Outcome.PROVIDER_FAULT, 0, 600 - 50),   # uptime+response only (completion 0, all disputed) - penalty
    (Outcome.USER_FAULT, 10 * ONE_TOKEN, 1000),  # the renter's fault: a completed job, no dispute
    (Outcome.INCONCLUSIVE, 5 * ONE_TOKEN, 600),  # not completed, disputed
])
def test_dispute_outcomes(rig: tuple[ChainStack, str], outcome: Outcome, paid: int, score: int) -> None:
    stack, rid = rig
    m = stack.market
    m.create_job("d", "renter", rid, "bafy-image", 3600)
    m.accept("d", "prov")
    m.start("d", "prov")
    m.dispute("d", "renter", "job failed")
    assert m.job("d").status == JobStatus.DISPUTED
    job = m.resolve("d", outcome)
    assert job.status == JobStatus.COMPLETED and job.outcome == outcome and job.final_cost == paid
    assert m.resolve("d", outcome) == job  # a retried resolution changes nothing
    assert stack.escrow.balance_of("renter") == 100 * ONE_TOKEN - paid
    assert stack.escrow.balance_of("prov") + stack.escrow.balance_of("platform") == paid
    assert m.reputation("prov") == score
    invariant(stack)


def test_cancel_before_acceptance_refunds_everything(rig: tuple[ChainStack, str]) -> None:
    stack, rid = rig
    m = stack.market
    m.create_job("c", "renter", rid, "bafy-image", 7200)
    assert stack.escrow.locked_for("c") == 20 * ONE_TOKEN
    m.cancel("c", "renter")
    assert m.job("c").status == JobStatus.CANCELLED
    assert stack.escrow.balance_of("renter") == 100 * ONE_TOKEN and stack.escrow.escrowed_total() == 0
    with pytest.raises(JobTransitionError):
        m.accept("c", "prov")


def test_cancel_after_acceptance_refunds_everything(rig: tuple[ChainStack, str]) -> None:
    stack, rid = rig
    m = stack.market
    m.create_job("ca", "renter", rid, "bafy-image", 3600)
    m.accept("ca", "prov")
    m.cancel("ca", "prov")
    assert m.job("ca").status == JobStatus.CANCELLED and stack.escrow.balance_of("renter") == 100 * ONE_TOKEN
    with pytest.raises(JobTransitionError):
        m.start("ca", "prov")


def test_either_party_stops_a_running_job_and_pays_the_time_used(rig: tuple[ChainStack, str]) -> None:
    stack, rid = rig
    m = stack.market
    m.create_job("st", "renter", rid, "bafy-image", 7200)
    m.accept("st", "prov")
    m.start("st", "prov")
    stack.client.set_next_block_timestamp(m.job("st").start_time + 900)
    job = m.stop("st", "renter")
    assert job.status == JobStatus.COMPLETED and job.final_cost == PRICE * 900 // 3600
    assert stack.escrow.balance_of("renter") == 100 * ONE_TOKEN - job.final_cost
    assert m.stop("st", "renter") == job  # a retried stop changes nothing
    m.create_job("early", "renter", rid, "bafy-image", 3600)
    assert m.stop("early", "renter").status == JobStatus.CANCELLED  # before the start: a cancel
    m.create_job("x", "renter", rid, "bafy-image", 3600)
    m.accept("x", "prov")
    m.start("x", "prov")
    with pytest.raises(ChainRevertError) as exc:
        stack.client.transact(stack.contracts.marketplace.functions.stopJob(job_key("x")),
                              stack.escrow.sender("stranger"))
    assert exc.value.reason == "NotJobParty"
    invariant(stack)


def test_the_provider_may_bill_less_than_the_clock_never_more(rig: tuple[ChainStack, str]) -> None:
    stack, rid = rig
    m = stack.market
    for name, usage, billed in (("less", 600, 600), ("more", 99_999, 1200)):
        m.create_job(name, "renter", rid, "bafy-image", 3600)
        m.accept(name, "prov")
        m.start(name, "prov")
        stack.client.set_next_block_timestamp(m.job(name).start_time + 1200)
        assert m.complete(name, "prov", usage_seconds=usage).final_cost == PRICE * billed // 3600
    with pytest.raises(ValidationError):
        m.complete("less", "prov", usage_seconds=-1)
    invariant(stack)


def test_state_machine_and_roles_are_enforced(rig: tuple[ChainStack, str]) -> None:
    stack, rid = rig
    m = stack.market
    m.create_job("s", "renter", rid, "bafy-image", 3600)
    assert m.create_job("s", "renter", rid, "bafy-image", 3600).max_cost == 10 * ONE_TOKEN  # idempotent
    assert stack.escrow.escrowed_total() == 10 * ONE_TOKEN
    with pytest.raises(JobTransitionError):
        m.start("s", "prov")  # not accepted yet
    with pytest.raises(ChainRevertError) as exc:
        m.accept("s", "renter")
    assert exc.value.reason == "NotProvider"
    m.accept("s", "prov")
    with pytest.raises(JobTransitionError):
        m.complete("s", "prov")  # not running
    with pytest.raises(JobTransitionError):
        m.resolve("s", Outcome.USER_FAULT)  # not disputed
    with pytest.raises(ValidationError):
        m.create_job("self", "prov", rid, "bafy-image", 3600)


def test_partial_release_counts_towards_the_final_cost(rig: tuple[ChainStack, str]) -> None:
    stack, rid = rig
    m = stack.market
    m.create_job("p", "renter", rid, "bafy-image", 3600)
    m.accept("p", "prov")
    m.start("p", "prov")
    stack.escrow.partial_release("p", 2 * ONE_TOKEN, "hour-0")
    start = m.job("p").start_time
    stack.client.set_next_block_timestamp(start + 1800)
    job = m.complete("p", "prov")
    assert job.final_cost == 5 * ONE_TOKEN
    assert stack.escrow.balance_of("renter") == 95 * ONE_TOKEN
    invariant(stack)


def test_oracle_reports_move_the_score(rig: tuple[ChainStack, str]) -> None:
    stack, rid = rig
    m = stack.market
    run_lifecycle(stack, "ok", "renter", rid, "prov", actual_seconds=100)
    m.report_metrics("prov", uptime_permille=992, response_permille=1000)
    # (992*4 + 1000*2 + 1000*3 + 1000) / 10
    assert m.reputation("prov") == 996
    assert m.resource(rid).reputation == 996
    with pytest.raises(ChainRevertError) as exc:
        stack.client.transact(stack.contracts.reputation.functions.applyPenalty(
            stack.escrow.address_of("prov"), 10, "x"), stack.escrow.sender("renter"))
    assert exc.value.reason == "NotOracle"
