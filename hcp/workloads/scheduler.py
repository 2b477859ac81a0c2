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
from dataclasses import replace
from typing import Any, Protocol

from hcp.errors import HcpError, NoGpuAvailableError
from hcp.fleet.holds import Hold, HoldKind
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

    async def ahold(self, device_id: str, hold: Hold, reason: str = "",
                    replaces: Hold | None = None) -> Any: ...

    async def arelease(self, device_id: str, hold: Hold, then: GpuMode | None = None,
                       reason: str = "") -> Any: ...


class Scheduler:
    def __init__(self, core: WorkloadRouter, gpus: GpuPort, inventory: Mapping[str, GpuInventory],
                 commit: Callable[[], Awaitable[None]]) -> None:
        self.core = core
        self.gpus = gpus
        self.inventory = dict(inventory)
        self.commit = commit
        self._pass_lock = asyncio.Lock()
        self._acquire_lock = asyncio.Lock()
        # GPUs this scheduler gave a workload a hold on (device id -> workload id). After a
        # restart it is empty: the first pass reads the holds from the GPUs themselves.
        self._holds: dict[str, str] = {}
        self._holds_known = False

    async def views(self) -> list[GpuView]:
        """What the router knows of each GPU now; one that does not answer is left out."""
        views = []
        for device_id, st in (await self.gpus.astatuses(list(self.inventory))).items():
            if isinstance(st, HcpError):
                log.warning("GPU %s unreachable: %s", device_id, st.detail)
                continue
            inv = self.inventory[device_id]
            views.append(GpuView(device_id=device_id, model=inv.model, memory_gb=inv.memory_gb,
                                 facility=inv.facility, mode=st.mode,
                                 temperature_c=st.temperature_c, utilization=st.utilization,
                                 held_by=st.held_by))
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
            if len(core.queues) or core.assigned or self._holds or not self._holds_known:
                views = await self.views()
                for wid in core.reconcile(views):
                    log.warning("workload %s lost its GPU to a mode change; requeued", wid)
                views = await self._release_ended(views)
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
        # The workload holds its GPU (switched to INFERENCE if it was not): until it ends the
        # optimizer, the power-cap step and the provider agent cannot take it.
        victim = Hold.workload(p.victim_id) if p.action is Action.PREEMPT_WORKLOAD and p.victim_id \
            else None
        try:
            await self.gpus.ahold(p.device_id, Hold.workload(w.id), f"router: workload {w.id}",
                                  replaces=victim)
        except HcpError as exc:
            log.warning("hold of %s for %s failed: %s", p.device_id, w.id, exc.detail)
            if w.state is S.SCHEDULED:
                w.preempted_mining = prior
                core.requeue(w.id, f"GPU {p.device_id} could not be held: {exc.code}")
            return
        self._holds[p.device_id] = w.id
        if w.state is S.SCHEDULED:  # not cancelled while the GPU switched
            core.mark_running(w.id)

    async def give_back(self, device_id: str | None, workload_id: str) -> None:
        """Release ``workload_id``'s hold on ``device_id`` now (it was cancelled or completed
        by a call), so the GPU is free when the call returns; a failure is left to the next
        pass, which gives back every hold of a workload that no longer runs."""
        if device_id is None or self.core.assigned.get(device_id) == workload_id:
            return  # never placed, or still running: nothing to give back
        try:
            await self.gpus.arelease(device_id, Hold.workload(workload_id), None,
                                     f"router: workload {workload_id} ended")
        except HcpError as exc:
            log.warning("release of %s by workload %s failed: %s", device_id, workload_id,
                        exc.detail)
            return
        if self._holds.get(device_id) == workload_id:
            del self._holds[device_id]

    async def _release_ended(self, views: list[GpuView]) -> list[GpuView]:
        """Give back the holds of workloads that no longer hold their GPU in the core (ended,
        requeued, preempted), including those a crashed router left on the GPUs; returns the
        views with those GPUs shown free."""
        held = dict(self._holds)
        for g in views:
            h = Hold.parse(g.held_by)
            if h is not None and h.kind is HoldKind.WORKLOAD:
                held.setdefault(g.device_id, h.id)
                if self.core.assigned.get(g.device_id) == h.id:
                    self._holds[g.device_id] = h.id  # a resumed workload's hold (a restart)
        self._holds_known = True
        stale = [(d, wid) for d, wid in held.items() if self.core.assigned.get(d) != wid]
        if not stale:
            return views
        results = await asyncio.gather(
            *(self.gpus.arelease(d, Hold.workload(wid), None, f"router: workload {wid} ended")
              for d, wid in stale), return_exceptions=True)
        released: set[str] = set()
        for (d, wid), r in zip(stale, results):
            if isinstance(r, BaseException):  # kept: the next pass tries again
                log.warning("release of %s by workload %s failed: %s", d, wid, r)
                self._holds[d] = wid
            else:
                if self._holds.get(d) == wid:
                    del self._holds[d]
                released.add(d)
        return [replace(g, held_by=None) if g.device_id in released else g for g in views]

    async def acquire_inference_gpu(self, owner: str) -> str:
        """A GPU in INFERENCE for online requests (shared with running workloads): one already
        in INFERENCE, else an IDLE one, else a MINING one switched (recorded as an
        ``inference_preemption`` event)."""
        async with self._acquire_lock:
            views = await self.views()
            for mode in _INFERENCE_SOURCES:
                cands = [g for g in views if g.mode is mode]
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
