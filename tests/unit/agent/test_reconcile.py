"""Crash safety: a new agent rebuilds its view from container labels and job records. It
resumes what still runs, settles what ended, never starts, completes or pays a job twice,
and leaves no container or GPU behind."""

from __future__ import annotations

import time

from hcp.agent.messages import ContainerSpec, NetworkMode, Phase, Reason, RunRecord
from hcp.agent.spec import (
    LABEL_AGENT,
    LABEL_GPU,
    LABEL_JOB,
    LABEL_MANAGED,
    MANAGED_BY,
    container_name,
)
from hcp.errors import ContainerEngineError
from hcp.marketplace.escrow_backend import ONE_TOKEN
from tests.unit.agent.conftest import PROVIDER, RENTER, World


def _paid(w: World) -> int:
    return w.ledger.balance_of(PROVIDER.subject)


def _texts(w: World, job: str) -> list[str]:
    lines = w.runs.read_logs(job, -1, 1000)
    assert [ln.seq for ln in lines] == list(range(len(lines)))  # no gap, no repeat
    return [ln.text for ln in lines]


def _running(w: World, seconds: int = 600) -> tuple[str, str]:
    first = w.agent()
    job = w.job(seconds)
    first.step()
    c = w.containers.by_job(job)
    first.close()  # the agent dies; its container keeps running
    return job, c.id


def test_a_running_container_is_resumed_not_restarted(world: World) -> None:
    first = world.agent()
    job = world.job(600)
    first.step()
    c = world.containers.by_job(job)
    for i in range(3):
        world.containers.emit(c.id, f"before {i}")
    assert first._runs[job].capture.wait(0.01) is False
    first.close()
    world.containers.emit(c.id, "while no agent watched")
    second = world.agent()
    report = second.step()
    assert report.adopted == [job] and world.containers.starts == 1
    assert world.status(job) == "RUNNING" and world.gpus.holder("gpu-0") == job
    world.containers.emit(c.id, "after")
    world.clock.advance(40)
    world.containers.exit(c.id, 0)
    second.step()
    assert world.service.get_job(RENTER, job).final_cost == 40 * ONE_TOKEN
    assert _texts(world, job) == ["before 0", "before 1", "before 2", "while no agent watched", "after"]
    assert world.containers.containers == {}


def test_a_container_that_ended_while_no_agent_watched_is_settled_once(world: World) -> None:
    job, cid = _running(world)
    world.clock.advance(25)
    world.containers.exit(cid, 3)
    second = world.agent()
    assert second.step().settled == [(job, Reason.EXITED)]
    paid = _paid(world)
    assert world.service.get_job(RENTER, job).final_cost == 25 * ONE_TOKEN
    run = world.runs.get_run(job)
    assert run is not None and run.exit_code == 3 and "no agent watched" in (run.detail or "")
    third = world.agent()  # and once more: nothing left to do, nothing paid again
    report = third.step()
    assert report.settled == [] and report.adopted == [] and _paid(world) == paid


def test_a_job_completed_before_the_crash_is_not_paid_again(world: World) -> None:
    job, cid = _running(world)
    world.clock.advance(10)
    world.containers.exit(cid, 0)
    world.service.complete(PROVIDER, job, 10)  # the dead agent had completed it...
    paid = _paid(world)  # ...but died before removing its container
    report = world.agent().step()
    assert report.adopted == [job] and cid in world.containers.removed
    assert _paid(world) == paid and world.status(job) == "COMPLETED"
    assert world.gpus.holder("gpu-0") is None


def test_a_renter_stop_while_no_agent_ran_removes_the_container(world: World) -> None:
    job, cid = _running(world)
    world.clock.advance(5)
    world.service.stop(RENTER, job)
    paid = _paid(world)
    report = world.agent().step()
    assert report.settled == [(job, Reason.STOPPED_BY_RENTER)] and cid in world.containers.removed
    assert _paid(world) == paid


def test_a_container_lost_by_the_engine_is_paid_up_to_its_last_evidence(world: World) -> None:
    first = world.agent()
    job = world.job(600)
    first.step()
    cid = world.containers.by_job(job).id
    world.clock.advance(9)
    world.containers.emit(cid, "last words")
    _wait_stored(world, job, 1)
    first.close()
    world.clock.advance(100)
    world.containers.containers.pop(cid)  # the Engine lost the container (a wiped host)
    report = world.agent().step()
    assert report.settled == [(job, Reason.CONTAINER_LOST)]
    assert world.service.get_job(RENTER, job).final_cost == 9 * ONE_TOKEN
    assert world.gpus.holder("gpu-0") is None


def _wait_stored(w: World, job: str, n: int) -> None:
    for _ in range(500):
        if len(w.runs.read_logs(job, -1, 1000)) >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"{n} lines never stored")


def test_a_container_started_but_not_yet_billed_starts_billing(world: World) -> None:
    job = world.job(600)
    world.service.accept(PROVIDER, job)
    spec = ContainerSpec(container_name(job), "sha256:" + "ab" * 32, None, {}, {
        LABEL_MANAGED: MANAGED_BY, LABEL_AGENT: "node-1", LABEL_JOB: job, LABEL_GPU: "gpu-0"},
        10**9, 1 << 30, 64, NetworkMode.NONE, {}, None, None, True)
    cid = world.containers.create(spec)
    world.containers.start(cid)  # the agent died right here
    world.runs.save_run(RunRecord(job, "node-1", PROVIDER.subject, "gpu-0", Phase.STARTING,
                                  world.clock.now(), container_id=cid))
    agent = world.agent()
    agent.step()
    assert world.status(job) == "RUNNING" and world.containers.starts == 1
    world.clock.advance(15)
    world.containers.exit(cid, 0)
    agent.step()
    assert world.service.get_job(RENTER, job).final_cost == 15 * ONE_TOKEN


def test_containers_of_unknown_jobs_are_removed(world: World) -> None:
    spec = ContainerSpec(container_name("no-such-job"), "img", None, {}, {
        LABEL_MANAGED: MANAGED_BY, LABEL_AGENT: "node-1", LABEL_JOB: "no-such-job"},
        10**9, 1 << 30, 64, NetworkMode.NONE, {}, None, None, True)
    cid = world.containers.create(spec)
    world.containers.start(cid)
    assert cid in world.agent().step().removed
    assert world.containers.containers == {}


def test_a_gpu_left_rented_to_an_ended_job_is_freed(world: World) -> None:
    job = world.job(600)
    world.service.stop(RENTER, job)
    world.gpus.enter_rented("gpu-0", job)
    world.agent().step()
    assert world.gpus.holder("gpu-0") is None


def test_an_engine_outage_is_followed_by_a_reconcile(world: World) -> None:
    agent = world.agent()
    job = world.job(600)
    agent.step()
    cid = world.containers.by_job(job).id
    world.containers.emit(cid, "one")
    world.containers.down = True
    try:
        agent.step()
        raise AssertionError("the step should have failed")
    except ContainerEngineError:
        pass
    world.containers.down = False
    # The Engine restarted: the container was stopped with it.
    world.clock.advance(8)
    world.containers.exit(cid, 255)
    world.containers.emit(cid, "two")
    report = agent.step()
    assert report.settled == [(job, Reason.EXITED)]
    assert world.service.get_job(RENTER, job).final_cost == 8 * ONE_TOKEN
    assert _texts(world, job) == ["one", "two"]


def test_cleanup_cut_short_by_an_outage_keeps_the_outcome(world: World) -> None:
    agent = world.agent()
    job = world.job(600)
    agent.step()
    cid = world.containers.by_job(job).id
    world.clock.advance(6)
    world.containers.exit(cid, 0)
    real_remove = world.containers.remove

    def engine_gone(container_id: str) -> None:
        raise ContainerEngineError("the Engine went away mid-cleanup")

    world.containers.remove = engine_gone  # type: ignore[method-assign]
    try:
        agent.step()
        raise AssertionError("the step should have failed")
    except ContainerEngineError:
        pass
    run = world.runs.get_run(job)
    assert run is not None and run.phase is Phase.STOPPING and run.reason is Reason.EXITED
    paid = _paid(world)
    world.containers.remove = real_remove  # type: ignore[method-assign]
    agent.step()
    run = world.runs.get_run(job)
    assert run is not None and run.phase is Phase.SETTLED and run.reason is Reason.EXITED
    assert run.detail == "exit code 0" and _paid(world) == paid
    assert world.containers.containers == {} and world.gpus.holder("gpu-0") is None
