"""The router actor: a thin async Ray shell over hcp.workloads.router.WorkloadRouter.

Durability: every mutating call returns only after its change is committed. Concurrent calls
are group-committed: one flusher coroutine writes whatever accumulated while the previous
write was in flight, in one transaction, off the event loop. That is what lets thousands of
submissions per second through with one store round trip per batch instead of per workload.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import ray

from actors.handles import FleetClient
from actors.options import router_actor_name, router_actor_options
from hcp.clock import SystemClock
from hcp.config import Settings
from hcp.errors import (
    HcpError,
    InvalidWorkloadError,
    NoGpuAvailableError,
    RouterBusyError,
    RouterUnavailableError,
)
from hcp.logging_setup import configure_logging
from hcp.store import engine_for
from hcp.workloads.metering import PriceTable
from hcp.workloads.repository import WorkloadRepository
from hcp.workloads.router import WorkloadRouter, parse_spec
from hcp.workloads.scoring import Action, GpuView, Placement, score
from hcp.workloads.types import Workload, WorkloadState

log = logging.getLogger(__name__)


@ray.remote
class RouterActor:
    def __init__(self, settings: Settings, gpus: dict[str, Any]) -> None:
        configure_logging(settings.log_level)
        self._settings = settings
        self._fleet = FleetClient(dict(gpus))
        self._gpus = self._fleet.gpus
        self._repo = WorkloadRepository(engine_for(settings.resolved_database_url))
        inventory = {g.device_id: g for g in self._repo.gpu_inventory()}
        missing = sorted(set(self._gpus) - set(inventory))
        if missing:
            log.warning("GPUs not in the store are not routed to: %s", missing)
        self._inventory = {k: v for k, v in inventory.items() if k in self._gpus}
        self._core = WorkloadRouter(
            self._repo, PriceTable.from_settings(settings), SystemClock(),
            gpu_models={k: v.model for k, v in inventory.items()}, max_queued=settings.router_max_queued,
            fleet=self._inventory.values())
        self._resumed = self._core.resume()
        log.info("router resumed %s", self._resumed)
        self._waiters: list[asyncio.Future[None]] = []
        self._refused: dict[str, HcpError] = {}  # admitted, then refused by the store alone
        self._wake_flush = asyncio.Event()
        self._wake_sched = asyncio.Event()
        self._wake_urgent = asyncio.Event()
        self._coalesce = min(settings.router_coalesce_seconds, settings.router_tick_seconds)
        self._acquire_lock = asyncio.Lock()
        self._sched_lock = asyncio.Lock()
        self._tick = settings.router_tick_seconds
        # Ray runs an async actor's constructor inside its event loop: the loops start now, so a
        # restarted router resumes scheduling and timing without waiting for a caller.
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._flusher()), loop.create_task(self._scheduler())]
        if self._core.pending():
            self._wake_flush.set()

    # -- API (every method returns JSON-able values and raises hcp errors) ----------------
    async def submit(self, owner: str, spec: dict[str, Any]) -> dict[str, Any]:
        # The view as admitted (and committed): the scheduler may move it on during the commit.
        w = self._core.admit(owner, spec)
        view = w.view()
        await self._commit()
        self._wake(w.real_time)
        refused = self._refused.pop(w.id, None)
        if refused is not None:
            raise refused
        return view

    def _wake(self, urgent: bool) -> None:
        self._wake_sched.set()
        if urgent:
            self._wake_urgent.set()

    async def submit_many(self, owner: str, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Admit several workloads with one commit (all validated first: one invalid spec
        refuses all; a store refusal of one item afterwards fails that item alone, raised)."""
        parsed = [parse_spec(s) for s in specs]
        room = self._core.max_queued - len(self._core.queues)
        if len(parsed) > room:
            raise RouterBusyError(f"router queue has room for {max(0, room)} more workloads",
                                  queued=len(self._core.queues))
        admitted = [self._core.admit(owner, s) for s in parsed]
        views = [w.view() for w in admitted]
        await self._commit()
        self._wake(any(w.real_time for w in admitted))
        refused = [self._refused.pop(w.id) for w in admitted if w.id in self._refused]
        if refused:
            raise refused[0]
        return views

    async def submit_batch(self, items: list[tuple[str, dict[str, Any], str | None]]) -> list[Any]:
        """Admit independent submissions (from many API requests) with one commit.

        Each item is (owner, spec, idempotency key or None) and gets its own answer: the
        committed view (with ``"replayed": True`` when its key had already admitted it), or
        the typed error that refused it (as a value, so one bad spec does not refuse the
        others). A failed commit refuses all.
        """
        keys = [(owner, key) for owner, _, key in items if key is not None]
        if keys:
            await asyncio.to_thread(self._core.preload_keys, keys)
        answers, urgent = self._core.admit_batch(items)
        if any(isinstance(a, dict) for a in answers):
            await self._commit()  # a replay of a key still in flight waits for its commit too
            self._wake(urgent)
            answers = [self._refused.pop(a["id"], a) if isinstance(a, dict) else a
                       for a in answers]
        return answers

    async def get(self, workload_id: str) -> dict[str, Any]:
        return self._core.get(workload_id).view()

    async def list(self, owner: str | None = None, state: str | None = None, limit: int = 50,
                   cursor: str | None = None, type: str | None = None) -> dict[str, Any]:
        await self._commit()  # reads see every change acknowledged so far
        items, nxt = await asyncio.to_thread(self._repo.page, owner, state, type, limit, cursor)
        return {"items": [self._live(w).view() for w in items], "next_cursor": nxt}

    async def cancel(self, workload_id: str) -> dict[str, Any]:
        w = self._core.cancel(workload_id, "cancelled by request")
        await self._commit()
        self._wake_sched.set()
        return w.view()

    async def complete(self, workload_id: str, ok: bool = True, detail: str = "") -> dict[str, Any]:
        w = self._core.complete(workload_id, ok, detail)
        await self._commit()
        self._wake_sched.set()
        return w.view()

    async def usage(self, owner: str | None = None) -> dict[str, Any]:
        await self._commit()
        return await asyncio.to_thread(self._repo.usage, owner)

    async def acquire_inference_gpu(self, owner: str) -> str:
        """A GPU in INFERENCE for online requests (shared with running workloads).

        Prefers one already in INFERENCE, then an IDLE one, then switches a MINING one (recorded
        as an ``inference_preemption`` event); CURTAILED GPUs are never woken.
        """
        async with self._acquire_lock:
            views = await self._views()
            req: dict[str, Any] = {}
            for mode in ("INFERENCE", "IDLE", "MINING"):
                cands = [g for g in views if g.mode == mode]
                if not cands:
                    continue
                g = max(cands, key=lambda c: (score(req, c), c.device_id))
                if mode != "INFERENCE":
                    await self._fleet.aswitch(g.device_id, "INFERENCE", f"router: inference for {owner}")
                    self._core.note_event({
                        "at": self._core.clock.now(), "kind": "inference_preemption",
                        "device_id": g.device_id, "facility": g.facility, "reason": f"inference for {owner}",
                        "payload": {"owner": owner, "device_id": g.device_id, "from_mode": mode,
                                    "preempted_mining": mode == "MINING"}})
                    await self._commit()
                return g.device_id
        raise NoGpuAvailableError("no GPU can serve inference now", owner=owner)

    async def stats(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "queued": len(self._core.queues), "active": len(self._core.active),
                "assigned": dict(self._core.assigned), "resumed": dict(self._resumed),
                "queued_by_priority": self._core.queues.depth_by_priority()}

    async def ready(self) -> bool:
        return True

    # -- group commit ---------------------------------------------------------------------
    async def _commit(self) -> None:
        if not self._core.pending() and not self._waiters:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._wake_flush.set()
        await fut

    async def _flusher(self) -> None:
        while True:
            await self._wake_flush.wait()
            self._wake_flush.clear()
            waiters, self._waiters = self._waiters, []
            batch = self._core.drain()
            try:
                refused = await asyncio.to_thread(self._core.commit, batch)
            except Exception as exc:  # noqa: BLE001 -- any store failure: nobody here is acknowledged
                log.error("store write failed (%d new workloads refused): %s",
                          len(batch.inserts), exc)
                err = exc if isinstance(exc, HcpError) else RouterUnavailableError(str(exc))
                for f in waiters:
                    if not f.done():
                        f.set_exception(err)
                await asyncio.sleep(0.5)
                continue
            for wid, exc in refused.items():
                # One customer's item the store could not hold fails alone (answered by
                # submit_batch); the detail stays in the log, the client gets a typed 422.
                log.warning("workload %s refused by the store: %s", wid, exc)
                self._refused[wid] = InvalidWorkloadError(
                    "the store cannot hold this workload's fields", problems=["body"])
            for f in waiters:
                if not f.done():
                    f.set_result(None)

    # -- scheduling -----------------------------------------------------------------------
    async def _scheduler(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake_sched.wait(), timeout=self._tick)
            except TimeoutError:
                pass
            self._wake_sched.clear()
            try:
                await self._schedule_once()
            except Exception:  # keep routing; the error is in the log and nothing was half-applied
                log.exception("scheduling pass failed")
                await asyncio.sleep(self._tick)
            # Admissions wake the loop; a pause lets a burst of them share one pass (each pass
            # asks every GPU for its status). Real-time work cuts the pause short.
            try:
                await asyncio.wait_for(self._wake_urgent.wait(), timeout=self._coalesce)
            except TimeoutError:
                pass
            self._wake_urgent.clear()

    async def _schedule_once(self) -> None:
        async with self._sched_lock:
            for wid in self._core.expired():
                self._core.complete(wid, True, "duration elapsed")
            for wid in self._core.fail_sla_breaches():
                log.info("workload %s failed: its SLA can no longer be met", wid)
            if len(self._core.queues) or self._core.assigned:
                views = await self._views()
                for wid in self._core.reconcile(views):
                    log.warning("workload %s lost its GPU to a mode change; requeued", wid)
                placements = self._core.plan(views)
                if placements:
                    await asyncio.gather(*(self._start(p) for p in placements))
            if self._core.pending():
                await self._commit()

    async def _start(self, p: Placement) -> None:
        w = self._core.active.get(p.workload_id)
        if w is None or w.state is not WorkloadState.QUEUED:
            return
        if p.action is Action.PREEMPT_WORKLOAD and p.victim_id:
            self._core.requeue(p.victim_id, f"preempted by real-time workload {w.id}")
        prior = w.preempted_mining  # only a switch that happened may mark the workload
        self._core.mark_scheduled(w.id, p.device_id, preempted_mining=p.action is Action.PREEMPT_MINING)
        try:
            await self._commit()  # durable before the GPU is touched: a restart then requeues it
        except HcpError:
            if w.state is WorkloadState.SCHEDULED:
                w.preempted_mining = prior
                self._core.requeue(w.id, "store unavailable; not started")
            raise
        if p.action in (Action.ACTIVATE, Action.PREEMPT_MINING):
            try:
                await self._fleet.aswitch(p.device_id, "INFERENCE", f"router: workload {w.id}")
            except Exception as exc:  # noqa: BLE001 -- typed or Ray errors alike: requeue
                log.warning("switch of %s for %s failed: %s", p.device_id, w.id, exc)
                if w.state is WorkloadState.SCHEDULED:
                    w.preempted_mining = prior
                    self._core.requeue(w.id, f"GPU {p.device_id} could not switch: {exc}"[:500])
                return
        if w.state is WorkloadState.SCHEDULED:  # not cancelled while the GPU switched
            self._core.mark_running(w.id)

    async def _views(self) -> list[GpuView]:
        ids = list(self._inventory)
        views = []
        for i, st in (await self._fleet.astatuses(ids)).items():
            if isinstance(st, HcpError):
                log.warning("GPU %s unreachable: %s", i, st.detail)
                continue
            inv = self._inventory[i]
            views.append(GpuView(device_id=i, model=inv.model, memory_gb=inv.memory_gb,
                                 facility=inv.facility, mode=st.mode.value,
                                 temperature_c=st.temperature_c, utilization=st.utilization))
        return views

    def _live(self, w: Workload) -> Workload:
        return self._core.active.get(w.id, w)


def launch_router(handles: Any, settings: Settings) -> Any:
    """Start (or reuse) the named router actor over the fleet's GPU actors (store migrated by
    the launch)."""
    actor = RouterActor.options(**router_actor_options(settings)).remote(settings, dict(handles.gpus))
    ray.get(actor.ready.remote())
    return actor


def find_router(settings: Settings) -> Any:
    try:
        return ray.get_actor(router_actor_name(), namespace=settings.ray_namespace)
    except ValueError:
        raise RouterUnavailableError(
            f"no router running in Ray namespace {settings.ray_namespace!r}") from None
