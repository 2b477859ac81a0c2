"""Platform workloads that carry a container: the real router core places them, the agent runs
them through ``WorkloadMarketplace`` (fake Engine), and the workload ends with the container."""

from __future__ import annotations

import itertools
from collections.abc import Collection
from typing import Any

import pytest

from hcp.agent.agent import ProviderAgent
from hcp.agent.messages import NetworkMode, Reason
from hcp.agent.spec import Identity
from hcp.agent.workloads import (
    PLATFORM,
    HeldByRouter,
    WorkloadMarketplace,
    WorkloadRuns,
    workload_slots,
)
from hcp.errors import InvalidWorkloadError, WorkloadTransitionError
from hcp.workloads.metering import PriceTable
from hcp.workloads.repository import GpuInventory
from hcp.workloads.router import WorkloadRouter
from hcp.workloads.types import Workload, WorkloadState
from tests.unit.agent.conftest import CID, World
from tests.unit.agent.fakes import InlineExecutor
from tests.unit.workloads.helpers import gpu

S = WorkloadState


class CoreSource:
    """``WorkloadSource`` over the real router core (what the router actor answers)."""

    def __init__(self, core: WorkloadRouter) -> None:
        self.core = core

    def container_workloads(self, device_ids: Collection[str]) -> list[Workload]:
        return [w for w in self.core.running().values()
                if w.container is not None and w.device_id in set(device_ids)]

    def get(self, workload_id: str) -> Workload | None:
        try:
            return self.core.get(workload_id)
        except Exception:  # noqa: BLE001 -- unknown id
            return None

    def container_started(self, workload_id: str) -> Workload:
        return self.core.container_started(workload_id)

    def finish(self, workload_id: str, ok: bool, detail: str) -> Workload | None:
        try:
            return self.core.complete(workload_id, ok, detail)
        except WorkloadTransitionError:
            return None


def _setup(world: World) -> tuple[WorkloadRouter, ProviderAgent, WorkloadRuns]:
    ids = (f"00000000-0000-4000-8000-{i:012d}" for i in itertools.count(1))
    core = WorkloadRouter(None, PriceTable.of({"H100": 3_600_000}, 0), world.clock,
                          gpu_models={"gpu-0": "H100"}, new_id=lambda: next(ids),
                          fleet=[GpuInventory("gpu-0", "H100", 80.0, "lab")])
    source = CoreSource(core)
    runs = WorkloadRuns(world.runs.engine, source)
    slots = workload_slots([("gpu-0", "H100")])
    market = WorkloadMarketplace(source, slots, world.settings, runs.get_run, world.clock)
    agent = ProviderAgent(Identity("node-1-wl", PLATFORM), slots, market, world.containers,
                          world.images, runs, HeldByRouter(), world.settings, world.clock,
                          executor=InlineExecutor())
    return core, agent, runs


def _place(core: WorkloadRouter, **spec: Any) -> Workload:
    w = core.admit("alice", {"type": "batch", "priority": 5, "duration_seconds": 600, **spec})
    [p] = core.plan([gpu("gpu-0", "INFERENCE")])
    core.mark_scheduled(p.workload_id, "gpu-0")
    return core.mark_running(w.id)


def test_a_workload_with_an_image_and_a_command_runs_and_its_output_is_kept(world: World) -> None:
    core, agent, runs = _setup(world)
    w = _place(core, container={"image_cid": CID, "command": ["/bin/sh", "-c", "echo hi"]})
    assert w.container == {"image_cid": CID, "command": ["/bin/sh", "-c", "echo hi"]}
    agent.step()
    c = world.containers.by_job(w.id)
    assert c.spec.command == ("/bin/sh", "-c", "echo hi")
    assert c.spec.network is NetworkMode.NONE  # no network: a workload asks for none
    assert c.spec.labels["hcp.job_id"] == w.id and c.spec.mem_bytes == 4 << 30  # workload limits
    world.containers.emit(c.id, "hi")
    world.clock.advance(12)
    world.containers.exit(c.id, 0)
    agent.step()
    done = core.get(w.id)
    assert done.state is S.COMPLETED and done.detail.startswith("container exited with code 0")
    assert [ln.text for ln in runs.read_logs(w.id, -1, 10)] == ["hi"]
    assert done.gpu_ms == 12_000  # metered by the router from its real run time


def test_the_image_pull_is_not_billed_the_container_run_is(world: World) -> None:
    """Placed at t0, the pull takes 30 s (the agent's step runs later), the container 12 s:
    12 s are metered and its duration counts from the container's start."""
    core, agent, _ = _setup(world)
    w = _place(core, container={"image_cid": CID, "command": ["true"]}, duration_seconds=40)
    placed = w.started_at
    world.clock.advance(30)  # the pull (and the agent's poll) before the container starts
    assert core.expired() == []  # 30 s since placement: not yet its 40 s
    agent.step()
    running = core.get(w.id)
    assert running.container_started_at == world.clock.now() and running.started_at > placed
    # Said again (a retried start, a reconcile after a restart): nothing moves.
    world.clock.advance(2)
    assert core.container_started(w.id).container_started_at == running.container_started_at
    world.clock.advance(10)
    assert core.expired() == []  # 42 s since placement, 12 s of run: not expired
    world.containers.exit(world.containers.by_job(w.id).id, 0)
    agent.step()
    done = core.get(w.id)
    assert done.state is S.COMPLETED and done.gpu_ms == 12_000
    assert done.cost_micro_usd == 12_000  # 1 micro-USD per ms at the test's price


def test_a_workload_whose_container_never_started_costs_nothing(world: World) -> None:
    core, _, _ = _setup(world)
    w = _place(core, container={"image_cid": CID})
    world.clock.advance(45)
    cancelled = core.cancel(w.id, "the image could not be pulled")
    assert cancelled.gpu_ms == 0 and cancelled.cost_micro_usd == 0
    with pytest.raises(WorkloadTransitionError):
        core.container_started(w.id)  # ended: too late to start
    plain = core.admit("alice", {"type": "batch", "priority": 5, "duration_seconds": 60})
    with pytest.raises(InvalidWorkloadError):
        core.container_started(plain.id)  # no container to start


def test_a_failing_command_fails_the_workload(world: World) -> None:
    core, agent, _ = _setup(world)
    w = _place(core, container={"image_cid": CID, "command": ["false"]})
    agent.step()
    world.clock.advance(1)
    world.containers.exit(world.containers.by_job(w.id).id, 3)
    agent.step()
    assert core.get(w.id).state is S.FAILED and "code 3" in core.get(w.id).detail


def test_cancelling_the_workload_stops_its_container(world: World) -> None:
    core, agent, runs = _setup(world)
    w = _place(core, container={"image_cid": CID})
    agent.step()
    c = world.containers.by_job(w.id)
    core.cancel(w.id, "cancelled by request")
    agent.step()
    assert c.id not in world.containers.containers or \
        world.containers.containers[c.id].status.value == "exited"  # stopped (and removed)
    run = runs.get_run(w.id)
    assert run is not None and run.reason is Reason.CANCELLED
    assert core.get(w.id).state is S.CANCELLED  # the router's record stands


def test_a_container_is_for_batch_and_training_only_and_its_cid_is_canonical() -> None:
    core = WorkloadRouter(None, PriceTable.of({"H100": 1}, 0))
    with pytest.raises(InvalidWorkloadError):
        core.admit("a", {"type": "inference", "priority": 5, "container": {"image_cid": CID}})
    with pytest.raises(InvalidWorkloadError):
        core.admit("a", {"type": "batch", "priority": 5, "container": {"image_cid": "not-a-cid"}})
    with pytest.raises(InvalidWorkloadError):
        core.admit("a", {"type": "batch", "priority": 5,
                         "container": {"image_cid": CID, "command": ["x" * 5000]}})
    v1 = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
    w = core.admit("a", {"type": "training", "priority": 5,
                         "container": {"image_cid": v1.upper()[0] + v1[1:].upper()}})
    assert w.container is not None and w.container["image_cid"] == v1


def test_a_preempted_workload_stops_and_runs_afresh_when_placed_again(world: World) -> None:
    core, agent, runs = _setup(world)
    w = _place(core, container={"image_cid": CID, "command": ["sleep", "600"]})
    agent.step()
    first = world.containers.by_job(w.id).id
    core.requeue(w.id, "preempted: facility power cap")
    assert core.get(w.id).container_started_at is None  # placed again, a fresh launch
    agent.step()  # the agent sees it is no longer running: the container stops
    assert first not in world.containers.containers or \
        world.containers.containers[first].status.value == "exited"
    [p] = core.plan([gpu("gpu-0", "INFERENCE")])
    core.mark_scheduled(p.workload_id, "gpu-0")
    core.mark_running(w.id)
    agent.step()
    again = world.containers.by_job(w.id)
    assert again.status.value == "running"  # launched afresh, not settled as lost
    assert core.get(w.id).state is S.RUNNING
