"""The router's placement protocol: one scheduling pass, and an inference GPU on demand.

Plain asyncio over two ports, so it runs (and is tested) without Ray: ``GpuPort`` reads GPU
status and switches GPUs (the router actor passes ``actors.handles.FleetClient``), and
``commit`` makes the core's pending changes durable (the actor's group commit). The order
of a start is the protocol: requeue a victim, mark the workload scheduled, commit (so a
restart requeues it instead of losing it), switch the GPU, then mark it running; a switch
that fails undoes the schedule (the workload is queued again, never lost).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from hcp.errors import HcpError, NoGpuAvailableError
from hcp.fleet.modes import GpuMode
from hcp.fleet.status import GpuStatus
from hcp.store.events import EventKind
from hcp.workloads.repository import GpuInventory
from hcp.workloads.router import WorkloadRouter
from hcp.workloads.scoring import Action, GpuView, Placement, score
from hcp.workloads.types import WorkloadState

log = logging.getLogger(__name__)

S = WorkloadState
# Where online inference is served from, best first: no switch, a free GPU, then mining ones.
# CURTAILED GPUs are never woken for it.
_INFERENCE_SOURCES = (GpuMode.INFERENCE, GpuMode.IDLE, GpuMode.MINING)


class GpuPort(Protocol):
    async def astatuses(self, device_ids: Iterable[str]) -> Mapping[str, GpuStatus | HcpError]: ...

    async def aswitch(self, device_id: str, target: GpuMode | str, reason: str = "",
                      correlation_id: str | None = None) -> Any: ...


class Scheduler:
    def __init__(self, core: WorkloadRouter, gpus: GpuPort, inventory: Mapping[str, GpuInventory],
                 commit: Callable[[], Awaitable[None]]) -> None:
        self.core = core
        self.gpus = gpus
        self.inventory = dict(inventory)
        self.commit = commit
        self._pass_lock = asyncio.Lock()
        self._acquire_lock = asyncio.Lock()

    async def views(self) -> list[GpuView]:
        """What the router knows of each GPU now; one that does not answer is left out."""
        views = []
        for device_id, st in (await self.gpus.astatuses(list(self.inventory))).items():
            if isinstance(st, HcpError):
                log.warning("GPU %s unreachable: %s", device_id, st.detail)
                continue
            inv = self.inventory[device_id]
            views.append(GpuView(device_id=device_id, model=inv.model, memory_gb=inv.memory_gb,
                                 facility=inv.facility, mode=st.mode.value,
                                 temperature_c=st.temperature_c, utilization=st.utilization))
        return views

    async def run_pass(self) -> None:
        """End what expired, fail what can no longer meet its SLA, requeue work whose GPU left
        INFERENCE, and start whatever fits now."""
        async with self._pass_lock:
            core = self.core
            for wid in core.expired():
                core.complete(wid, True, "duration elapsed")
            for wid in core.fail_sla_breaches():
                log.info("workload %s failed: its SLA can no longer be met", wid)
            if len(core.queues) or core.assigned:
                views = await self.views()
                for wid in core.reconcile(views):
                    log.warning("workload %s lost its GPU to a mode change; requeued", wid)
                placements = core.plan(views)
                if placements:
                    await asyncio.gather(*(self.start(p) for p in placements))
            if core.pending():
                await self.commit()

    async def start(self, p: Placement) -> None:
        core = self.core
        w = core.active.get(p.workload_id)
        if w is None or w.state is not S.QUEUED:
            return
        if p.action is Action.PREEMPT_WORKLOAD and p.victim_id:
            core.requeue(p.victim_id, f"preempted by real-time workload {w.id}")
        prior = w.preempted_mining  # only a switch that happened may mark the workload
        core.mark_scheduled(w.id, p.device_id, preempted_mining=p.action is Action.PREEMPT_MINING)
        try:
            await self.commit()  # durable before the GPU is touched
        except HcpError:
            if w.state is S.SCHEDULED:
                w.preempted_mining = prior
                core.requeue(w.id, "store unavailable; not started")
            raise
        if p.action in (Action.ACTIVATE, Action.PREEMPT_MINING):
            try:
                await self.gpus.aswitch(p.device_id, GpuMode.INFERENCE, f"router: workload {w.id}",
                                        correlation_id=w.id)
            except HcpError as exc:
                log.warning("switch of %s for %s failed: %s", p.device_id, w.id, exc.detail)
                if w.state is S.SCHEDULED:
                    w.preempted_mining = prior
                    core.requeue(w.id, f"GPU {p.device_id} could not switch: {exc.code}")
                return
        if w.state is S.SCHEDULED:  # not cancelled while the GPU switched
            core.mark_running(w.id)

    async def acquire_inference_gpu(self, owner: str) -> str:
        """A GPU in INFERENCE for online requests (shared with running workloads): one already
        in INFERENCE, else an IDLE one, else a MINING one switched (recorded as an
        ``inference_preemption`` event)."""
        async with self._acquire_lock:
            views = await self.views()
            for mode in _INFERENCE_SOURCES:
                cands = [g for g in views if g.mode == mode.value]
                if not cands:
                    continue
                g = max(cands, key=lambda c: (score({}, c), c.device_id))
                if mode is not GpuMode.INFERENCE:
                    await self.gpus.aswitch(g.device_id, GpuMode.INFERENCE,
                                            f"router: inference for {owner}")
                    self.core.note_event({
                        "at": self.core.clock.now(), "kind": EventKind.INFERENCE_PREEMPTION.value,
                        "device_id": g.device_id, "facility": g.facility,
                        "reason": f"inference for {owner}",
                        "payload": {"owner": owner, "device_id": g.device_id,
                                    "from_mode": mode.value,
                                    "preempted_mining": mode is GpuMode.MINING}})
                    await self.commit()
                return g.device_id
        raise NoGpuAvailableError("no GPU can serve inference now", owner=owner)
