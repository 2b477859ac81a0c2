"""The agent's job flow over the real marketplace (SQLite) and fake Engine/image ports:
accept, pull, start (billing), exit, complete with the real run time; the refund rules."""

from __future__ import annotations

from typing import Any

from hcp.agent.agent import ProviderAgent
from hcp.agent.messages import Phase, Reason
from hcp.errors import GpuBusyError, PeerFetchError, TamperedImageError
from hcp.marketplace.escrow_backend import ONE_TOKEN, split_payment
from tests.unit.agent.conftest import PROVIDER, RENTER, World


def _balances(w: World) -> tuple[int, int, int]:
    return (w.ledger.balance_of(RENTER.subject), w.ledger.balance_of(PROVIDER.subject),
            w.ledger.balance_of(w.ledger.platform_account))


def test_a_job_runs_and_is_paid_for_its_real_run_time(world: World) -> None:
    agent = world.agent()
    before = _balances(world)
    job = world.job(600)
    report = agent.step()
    assert report.accepted == [job] and report.launched == [job]
    assert world.status(job) == "RUNNING"  # the container runs: billing started
    assert world.gpus.holder("gpu-0") == job
    c = world.containers.by_job(job)
    world.containers.emit(c.id, "hello")
    world.containers.emit(c.id, "warning", "stderr")
    world.clock.advance(30)
    world.containers.exit(c.id, 0)
    report = agent.step()
    assert report.settled == [(job, Reason.EXITED)]
    view = world.service.get_job(RENTER, job)
    assert view.status.value == "COMPLETED" and view.final_cost == 30 * ONE_TOKEN
    provider, platform = split_payment(30 * ONE_TOKEN)
    renter_after, provider_after, platform_after = _balances(world)
    assert renter_after == before[0] - 30 * ONE_TOKEN  # 600 locked, 570 refunded
    assert provider_after - before[1] == provider == 30 * ONE_TOKEN * 98 // 100
    assert platform_after - before[2] == platform == 30 * ONE_TOKEN * 2 // 100
    lines = world.runs.read_logs(job, -1, 100)
    assert [(ln.seq, ln.stream, ln.text) for ln in lines] == [(0, "stdout", "hello"), (1, "stderr", "warning")]
    run = world.runs.get_run(job)
    assert run is not None and run.phase is Phase.SETTLED and run.usage_seconds == 30
    assert run.exit_code == 0 and run.simulated_gpu is True
    assert c.id in world.containers.removed and world.gpus.holder("gpu-0") is None
    assert world.images.held == set()
    assert world.service.reputation(PROVIDER.subject).completed_jobs == 1


def test_a_crash_after_start_pays_the_time_it_ran(world: World) -> None:
    agent = world.agent()
    job = world.job(600)
    agent.step()
    world.clock.advance(12)
    world.containers.exit(world.containers.by_job(job).id, 137, oom=True)
    assert agent.step().settled == [(job, Reason.EXITED)]
    assert world.service.get_job(RENTER, job).final_cost == 12 * ONE_TOKEN
    run = world.runs.get_run(job)
    assert run is not None and run.exit_code == 137 and run.oom_killed
    assert run.detail == "exit code 137 (out of memory)"


def test_a_tampered_image_fails_the_job_with_a_full_refund(world: World) -> None:
    agent = world.agent()
    before = _balances(world)
    world.images.failure = TamperedImageError("image Qm...: block bafy... does not hash to its CID")
    job = world.job(600)
    report = agent.step()
    assert report.failed == [(job, Reason.IMAGE_TAMPERED)]
    assert world.status(job) == "CANCELLED"
    assert _balances(world) == before  # everything back to the renter, nobody paid
    run = world.runs.get_run(job)
    assert run is not None and run.phase is Phase.FAILED and "does not hash" in (run.detail or "")
    assert world.gpus.holder("gpu-0") is None and world.containers.containers == {}


def test_an_unavailable_image_is_retried_then_refunded(world: World) -> None:
    agent = world.agent()
    world.images.failure = PeerFetchError("no peer served block Qm... (1 tried)")
    job = world.job(600)
    agent.step()
    assert world.status(job) == "ACCEPTED"
    failed = []
    for _ in range(10):
        world.clock.advance(120)
        failed += agent.step().failed
    assert failed == [(job, Reason.IMAGE_UNAVAILABLE)]
    assert world.images.pulls == agent.max_attempts and world.status(job) == "CANCELLED"


def test_a_container_that_dies_as_it_starts_is_refunded(world: World) -> None:
    agent = world.agent()
    world.containers.exit_on_start = 1
    job = world.job(600)
    assert agent.step().failed == [(job, Reason.START_FAILED)]
    assert world.status(job) == "CANCELLED"
    run = world.runs.get_run(job)
    assert run is not None and "exited with code 1" in (run.detail or "")


def test_the_renter_stopping_early_pays_the_time_used(world: World) -> None:
    agent = world.agent()
    before = _balances(world)
    job = world.job(600)
    agent.step()
    c = world.containers.by_job(job)
    world.clock.advance(20)
    stopped = world.service.stop(RENTER, job)
    assert stopped.status.value == "COMPLETED" and stopped.final_cost == 20 * ONE_TOKEN
    after_stop = _balances(world)
    report = agent.step()
    assert report.settled == [(job, Reason.STOPPED_BY_RENTER)]
    assert c.id in world.containers.removed and world.gpus.holder("gpu-0") is None
    assert _balances(world) == after_stop  # the agent moved no money of its own
    assert after_stop[0] == before[0] - 20 * ONE_TOKEN


def test_a_stop_before_start_refunds_everything(world: World) -> None:
    job = world.job(600)
    assert world.service.stop(RENTER, job).status.value == "CANCELLED"
    assert world.agent().step().accepted == []


def test_the_maximum_duration_is_enforced(world: World) -> None:
    agent = world.agent()
    job = world.job(60)
    agent.step()
    world.clock.advance(61)
    report = agent.step()
    assert report.settled == [(job, Reason.MAX_DURATION)]
    assert world.service.get_job(RENTER, job).final_cost == 60 * ONE_TOKEN  # capped at the escrow
    run = world.runs.get_run(job)
    assert run is not None and "maximum of 60 s" in (run.detail or "")


def test_a_preemption_is_recorded_and_pays_the_time_used(world: World) -> None:
    agent = world.agent()
    job = world.job(600)
    agent.step()
    world.clock.advance(7)
    assert agent.preempt("gpu-0", "facility power cap")
    run = world.runs.get_run(job)
    assert run is not None and run.reason is Reason.PREEMPTED and run.detail == "facility power cap"
    assert world.service.get_job(RENTER, job).final_cost == 7 * ONE_TOKEN
    assert world.gpus.holder("gpu-0") is None


def test_one_job_per_gpu_the_next_waits(world: World) -> None:
    agent = world.agent()
    first = world.job(600)
    world.clock.advance(1)  # first come, first served
    second = world.job(600)
    assert agent.step().accepted == [first]
    assert world.status(second) == "CREATED"
    world.containers.exit(world.containers.by_job(first).id, 0)
    agent.step()  # settles the first
    assert agent.step().accepted == [second]


def test_a_gpu_the_fleet_holds_is_not_rented(world: World) -> None:
    class Busy:
        def enter_rented(self, gpu_id: str, job_id: str) -> None:
            raise GpuBusyError("serving a workload")

        def leave_rented(self, gpu_id: str, job_id: str) -> None: ...

        def holder(self, gpu_id: str) -> str | None:
            return None

    world.gpus = Busy()  # type: ignore[assignment]
    job = world.job(600)
    assert world.agent().step().accepted == []
    assert world.status(job) == "CREATED"


def test_the_container_is_locked_down_and_limited_by_the_offer(world: World) -> None:
    agent = world.agent()
    job = world.job(600)
    agent.step()
    spec = world.containers.by_job(job).spec
    assert spec.nano_cpus == 2 * 10**9 and spec.mem_bytes == 4 << 30 and spec.pids_limit == 1024
    assert spec.tmpfs == {"/tmp": f"rw,nosuid,nodev,size={10 << 30}", "/data": f"rw,nosuid,nodev,size={10 << 30}"}
    assert spec.network.value == "none" and spec.simulated_gpu and spec.gpu_device is None
    assert spec.env["HCP_SIMULATED_GPU"] == "1" and spec.env["HCP_JOB_ID"] == job
    assert spec.labels["hcp.job_id"] == job and spec.labels["hcp.agent"] == "node-1"
    assert spec.labels["hcp.provider"] == PROVIDER.subject and spec.labels["hcp.simulated_gpu"] == "1"


def test_the_image_cache_runs_between_steps_and_a_failed_period_never_stops_the_agent(
        world: World) -> None:
    import threading

    class Cache:
        def __init__(self) -> None:
            self.calls = 0

        def step(self, force: bool = False) -> object:
            self.calls += 1
            if self.calls == 1:
                raise OSError("disk full")  # the first period fails
            return "period"

    cache = Cache()
    agent = world.agent()
    agent.cache = cache
    job = world.job(60)
    stop = threading.Event()
    calls = []
    real_step = agent.step

    def step():  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) >= 3:
            stop.set()
        return real_step()

    agent.step = step  # type: ignore[method-assign]
    agent.settings = agent.settings.model_copy(update={"poll_seconds": 0.01})
    agent.run(stop)
    assert cache.calls == 3  # after every step, the failed period included
    assert world.status(job) in ("ACCEPTED", "RUNNING")  # the jobs went on regardless
    assert agent.cache_step(force=True) == "period"


def test_a_preemption_right_after_the_launch_finished_still_stops_and_pays(world: World) -> None:
    """The launch runs on a worker thread: it may have started billing when the preemption
    comes, before the agent's next step has collected it. The job is stopped and paid for the
    time it ran, not left running (the GPU held) for ever."""
    from concurrent.futures import Executor, Future

    class Deferred(Executor):
        def __init__(self) -> None:
            self.pending: list[tuple[Future[Any], Any, tuple[Any, ...]]] = []

        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def,override]
            fut: Future[Any] = Future()
            self.pending.append((fut, fn, args))
            return fut

        def run_all(self) -> None:
            for fut, fn, args in self.pending:
                fut.set_result(fn(*args))
            self.pending.clear()

    pool = Deferred()
    base = world.agent()
    agent = ProviderAgent(base.identity, list(base.slots.values()), base.market, base.containers,
                          base.images, base.runs, base.gpus, base.settings, world.clock,
                          executor=pool)
    job = world.job(600)
    agent.step()
    pool.run_all()  # the launch got through: the job is RUNNING and billed
    assert world.status(job) == "RUNNING"
    world.clock.advance(5)
    assert agent.preempt("gpu-0", "facility power cap")
    run = world.runs.get_run(job)
    assert run is not None and run.reason is Reason.PREEMPTED
    assert world.service.get_job(RENTER, job).final_cost == 5 * ONE_TOKEN
    assert world.gpus.holder("gpu-0") is None


def test_the_agent_records_its_pulls_and_containers_under_the_catalogues_names(
        world: World) -> None:
    from hcp.observability.sink import PrometheusSink

    sink = PrometheusSink()
    agent = world.agent()
    agent.metrics = sink
    job = world.job(600)
    agent.step()
    node = {"node": "node-1"}
    assert sink.value("hcp_agent_image_pulls_total", **node, result="ok") == 1
    assert sink.value("hcp_agent_image_pull_seconds_count", **node) == 1
    assert sink.value("hcp_agent_containers", **node, state="running") == 1
    world.clock.advance(3)
    world.containers.exit(world.containers.by_job(job).id, 0)
    agent.step()
    assert sink.value("hcp_agent_containers", **node, state="running") == 0
    world.images.failure = TamperedImageError("block does not match its CID", cid="x")
    world.job(600)
    agent.step()
    assert sink.value("hcp_agent_image_pulls_total", **node, result="verify_failed") == 1
    assert sink.value("hcp_agent_image_pull_seconds_count", **node) == 2
