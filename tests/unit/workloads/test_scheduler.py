"""The router's scheduling protocol without Ray: a workload holds its GPU while it runs, so the
optimizer's switches are refused instead of the router quietly requeueing the customer's work."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from hcp.errors import GpuBusyError, HcpError, InvalidTransitionError
from hcp.fleet.holds import Hold
from hcp.fleet.modes import GpuMode
from hcp.fleet.status import GpuStatus
from hcp.workloads.metering import PriceTable
from hcp.workloads.repository import GpuInventory
from hcp.workloads.router import WorkloadRouter
from hcp.workloads.scheduler import Scheduler
from hcp.workloads.types import WorkloadState

from .helpers import FakeClock

S = WorkloadState


class HoldingGpus:
    """GPUs with the device's hold rules (``hcp.fleet.device.GpuDevice``): a held GPU changes
    mode only for its holder; a plain switch is refused with ``GpuBusyError``."""

    def __init__(self, modes: Mapping[str, GpuMode]) -> None:
        self.mode = dict(modes)
        self.held: dict[str, Hold | None] = dict.fromkeys(modes)
        self.calls: list[tuple[str, str]] = []

    async def astatuses(self, device_ids: Iterable[str]) -> Mapping[str, GpuStatus | HcpError]:
        return {d: GpuStatus(d, "lab", self.mode[d], 0, telemetry=None,
                             held_by=self.held[d].key if self.held[d] else None)
                for d in device_ids}

    async def aswitch(self, device_id: str, target: GpuMode | str, reason: str = "",
                      correlation_id: str | None = None) -> Any:
        self.calls.append(("switch", device_id))
        if self.held[device_id] is not None:
            raise GpuBusyError(f"{device_id} is held", gpu_id=device_id)
        target = GpuMode.parse(target)
        if target is GpuMode.RENTED:
            raise InvalidTransitionError("RENTED only through a hold")
        self.mode[device_id] = target

    async def ahold(self, device_id: str, hold: Hold, reason: str = "",
                    replaces: Hold | None = None) -> Any:
        self.calls.append(("hold", device_id))
        cur = self.held[device_id]
        if cur is not None and cur not in (hold, replaces):
            raise GpuBusyError(f"{device_id} is held by {cur}", gpu_id=device_id)
        if self.mode[device_id] is GpuMode.CURTAILED:
            raise GpuBusyError(f"{device_id} is curtailed", gpu_id=device_id)
        self.held[device_id], self.mode[device_id] = hold, hold.mode

    async def arelease(self, device_id: str, hold: Hold, then: GpuMode | None = None,
                       reason: str = "") -> Any:
        self.calls.append(("release", device_id))
        if self.held[device_id] != hold:
            return None
        self.held[device_id] = None
        if then is not None:
            self.mode[device_id] = then
        return True


def _setup(modes: Mapping[str, GpuMode]) -> tuple[WorkloadRouter, Scheduler, HoldingGpus, FakeClock]:
    ids = (f"w{i}" for i in itertools.count(1))
    clock = FakeClock()
    inv = {d: GpuInventory(d, "H100", 80.0, "lab") for d in modes}
    core = WorkloadRouter(None, PriceTable.of({"H100": 3_600_000}, 0), clock,
                          gpu_models={d: "H100" for d in modes}, new_id=lambda: next(ids),
                          fleet=inv.values())
    gpus = HoldingGpus(modes)

    async def commit() -> None:
        core.flush()

    return core, Scheduler(core, gpus, inv, commit), gpus, clock


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_optimizer_cannot_take_a_gpu_from_a_running_workload() -> None:
    core, sched, gpus, clock = _setup({"g0": GpuMode.IDLE})
    w = core.admit("alice", {"type": "training", "priority": 5, "duration_seconds": 600})
    _run(sched.run_pass())
    assert core.get(w.id).state is S.RUNNING
    assert gpus.mode["g0"] is GpuMode.INFERENCE and gpus.held["g0"] == Hold.workload(w.id)
    started = core.get(w.id).started_at

    # The optimizer decides MINING pays more: the GPU refuses, the workload keeps running.
    with pytest.raises(GpuBusyError):
        _run(gpus.aswitch("g0", GpuMode.MINING, "optimizer d-1 BETTER_PROFIT"))
    clock.advance(60)
    _run(sched.run_pass())
    # Still the same run on the same GPU: never requeued behind the customer's back.
    assert core.get(w.id).state is S.RUNNING and core.get(w.id).started_at == started
    assert gpus.mode["g0"] is GpuMode.INFERENCE and core.get(w.id).gpu_ms == 0

    # When it ends, its hold is given back and the optimizer's next switch goes through.
    clock.advance(600)
    _run(sched.run_pass())
    assert core.get(w.id).state is S.COMPLETED
    assert gpus.held["g0"] is None and gpus.mode["g0"] is GpuMode.INFERENCE
    _run(gpus.aswitch("g0", GpuMode.MINING, "optimizer d-2 BETTER_PROFIT"))
    assert gpus.mode["g0"] is GpuMode.MINING


def test_a_cancelled_workload_gives_its_gpu_back_on_the_next_pass() -> None:
    core, sched, gpus, _ = _setup({"g0": GpuMode.INFERENCE})
    w = core.admit("alice", {"type": "inference", "priority": 5, "duration_seconds": 600})
    _run(sched.run_pass())
    assert gpus.held["g0"] == Hold.workload(w.id)
    core.cancel(w.id)
    _run(sched.run_pass())
    assert gpus.held["g0"] is None


def test_a_rented_gpu_is_never_placed_on_even_for_real_time_work() -> None:
    core, sched, gpus, _ = _setup({"g0": GpuMode.MINING, "g1": GpuMode.MINING})
    _run(gpus.ahold("g0", Hold.job("j-1"), "rented"))
    rt = core.admit("bob", {"type": "inference", "priority": 9, "duration_seconds": 60})
    _run(sched.run_pass())
    assert core.get(rt.id).device_id == "g1"  # preempted mining on the free GPU, not the rental
    again = core.admit("bob", {"type": "inference", "priority": 9, "duration_seconds": 60})
    _run(sched.run_pass())
    assert core.get(again.id).state is S.QUEUED
    assert ("hold", "g0") not in gpus.calls[1:]
    assert gpus.held["g0"] == Hold.job("j-1") and gpus.mode["g0"] is GpuMode.RENTED


def test_a_restarted_router_gives_back_holds_its_predecessor_left() -> None:
    core, sched, gpus, _ = _setup({"g0": GpuMode.INFERENCE})
    # A crashed router's workload still holds g0; the new router's core does not know it.
    _run(gpus.ahold("g0", Hold.workload("w-gone"), "router: workload w-gone"))
    _run(sched.run_pass())
    assert gpus.held["g0"] is None
    w = core.admit("alice", {"type": "inference", "priority": 5, "duration_seconds": 60})
    _run(sched.run_pass())
    assert core.get(w.id).state is S.RUNNING and gpus.held["g0"] == Hold.workload(w.id)


def test_a_hold_refused_requeues_the_workload_without_losing_it() -> None:
    core, sched, gpus, _ = _setup({"g0": GpuMode.IDLE})
    w = core.admit("alice", {"type": "inference", "priority": 5, "duration_seconds": 60})

    async def busy(device_id: str, hold: Hold, reason: str = "", replaces: Hold | None = None) -> Any:
        raise GpuBusyError("taken by a rental meanwhile", gpu_id=device_id)

    gpus.ahold = busy  # type: ignore[method-assign]
    _run(sched.run_pass())
    got = core.get(w.id)
    assert got.state is S.QUEUED and "could not be held: gpu_busy" in (got.detail or "")


def test_give_back_frees_the_gpu_at_once_and_only_for_an_ended_workload() -> None:
    core, sched, gpus, _ = _setup({"g0": GpuMode.INFERENCE})
    w = core.admit("alice", {"type": "inference", "priority": 5, "duration_seconds": 600})
    _run(sched.run_pass())
    _run(sched.give_back("g0", w.id))  # still running: kept
    assert gpus.held["g0"] == Hold.workload(w.id)
    core.complete(w.id)
    _run(sched.give_back("g0", w.id))
    assert gpus.held["g0"] is None
    _run(gpus.aswitch("g0", GpuMode.MINING, "optimizer"))  # no pass needed in between
