"""The router actor: a thin async Ray shell over the router core and its scheduler.

It holds the loops (a flusher, a scheduling timer) and makes the calls; what is admitted, where
work goes and in which order a start happens are the core's (``hcp.workloads.router`` and
``hcp.workloads.scheduler``). Answers are the core's typed messages.

Durability: every mutating call returns only after its change is committed. Concurrent calls
are group-committed: one flusher coroutine writes whatever accumulated while the previous
write was in flight, in one transaction, off the event loop (one store round trip per batch,
not per workload); a new workload the store refuses on its own fails alone.
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
from hcp.errors import HcpError, InvalidWorkloadError, RouterBusyError, RouterUnavailableError
from hcp.logging_setup import configure_for
from hcp.observability.workloads import record_live, record_preemption
from hcp.store import engine_for
from hcp.workloads.metering import PriceTable
from hcp.workloads.repository import WorkloadRepository
from hcp.workloads.router import WorkloadRouter, parse_spec
from hcp.workloads.scheduler import Scheduler
from hcp.workloads.types import (
    Admission,
    RouterStats,
    Submission,
    UsageTotals,
    Workload,
    WorkloadPage,
    WorkloadSpec,
)

log = logging.getLogger(__name__)


@ray.remote
class RouterActor:
    def __init__(self, settings: Settings, gpus: dict[str, Any]) -> None:
        configure_for(settings)
        from actors.metrics_sink import RaySink

        self._sink = RaySink()
        fleet = FleetClient(dict(gpus))
        self._repo = WorkloadRepository(engine_for(settings.resolved_database_url))
        inventory = {g.device_id: g for g in self._repo.gpu_inventory()}
        missing = sorted(set(fleet.gpus) - set(inventory))
        if missing:
            log.warning("GPUs not in the store are not routed to: %s", missing)
        routed = {k: v for k, v in inventory.items() if k in fleet.gpus}
        self._core = WorkloadRouter(
            self._repo, PriceTable.from_settings(settings), SystemClock(),
            gpu_models={k: v.model for k, v in inventory.items()},
            max_queued=settings.router.max_queued, fleet=routed.values(), metrics=self._sink)
        self._scheduler = Scheduler(self._core, fleet, routed, self._commit)
        self._resumed = self._core.resume()
        log.info("router resumed %s", self._resumed)
        record_preemption(self._sink, n=0)
        self._waiters: list[asyncio.Future[None]] = []
        self._refused: dict[str, HcpError] = {}  # admitted, then refused by the store alone
        self._wake_flush = asyncio.Event()
        self._wake_sched = asyncio.Event()
        self._wake_urgent = asyncio.Event()
        self._tick = settings.router.tick_seconds
        self._coalesce = min(settings.router.coalesce_seconds, self._tick)
        # Ray runs an async actor's constructor inside its event loop: the loops start now, so
        # a restarted router resumes scheduling and timing without waiting for a caller.
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._flusher()), loop.create_task(self._schedule_loop())]
        if self._core.pending():
            self._wake_flush.set()

    # -- API (the core's typed messages; hcp errors) -----------------------------------------
    async def submit(self, owner: str, spec: WorkloadSpec | dict[str, Any]) -> Workload:
        [answer] = await self.submit_batch([Submission(owner, parse_spec(spec))])
        if isinstance(answer, HcpError):
            raise answer
        return answer.workload

    async def submit_many(self, owner: str, specs: list[WorkloadSpec | dict[str, Any]]
                          ) -> list[Workload]:
        """Admit several workloads with one commit (all validated first: one invalid spec
        refuses all; a store refusal of one item afterwards fails that item alone, raised)."""
        parsed = [parse_spec(s) for s in specs]
        room = self._core.max_queued - len(self._core.queues)
        if len(parsed) > room:
            raise RouterBusyError(f"router queue has room for {max(0, room)} more workloads",
                                  queued=len(self._core.queues))
        answers = await self.submit_batch([Submission(owner, s) for s in parsed])
        refused = [a for a in answers if isinstance(a, HcpError)]
        if refused:
            raise refused[0]
        return [a.workload for a in answers if isinstance(a, Admission)]

    async def submit_batch(self, items: list[Submission]) -> list[Admission | HcpError]:
        """Admit independent submissions (from many API requests) with one commit; each
        ``Submission`` (owner, parsed spec, idempotency key or None) gets its own answer
        (``admit_batch``). A failed commit refuses all."""
        keys = [(owner, key) for owner, _, key in items if key is not None]
        if keys:
            await asyncio.to_thread(self._core.preload_keys, keys)
        answers, urgent = self._core.admit_batch(items)
        if any(isinstance(a, Admission) for a in answers):
            await self._commit()  # a replay of a key still in flight waits for its commit too
            self._wake(urgent)
            answers = [self._refused.pop(a.workload.id, a) if isinstance(a, Admission) else a
                       for a in answers]
        return answers

    async def get(self, workload_id: str) -> Workload:
        return self._core.get(workload_id)

    async def list(self, owner: str | None = None, state: str | None = None, limit: int = 50,
                   cursor: str | None = None, type: str | None = None) -> WorkloadPage:
        await self._commit()  # reads see every change acknowledged so far
        items, nxt = await asyncio.to_thread(self._repo.page, owner, state, type, limit, cursor)
        return WorkloadPage([self._core.active.get(w.id, w) for w in items], nxt)

    async def cancel(self, workload_id: str) -> Workload:
        w = self._core.cancel(workload_id, "cancelled by request")
        await self._commit()
        await self._scheduler.give_back(w.device_id, w.id)  # its GPU is free when this returns
        self._wake_sched.set()
        return w

    async def complete(self, workload_id: str, ok: bool = True, detail: str = "") -> Workload:
        w = self._core.complete(workload_id, ok, detail)
        await self._commit()
        await self._scheduler.give_back(w.device_id, w.id)
        self._wake_sched.set()
        return w

    async def container_started(self, workload_id: str) -> Workload:
        """The agent started the workload's container: metering starts now (committed
        before this returns, so a restart keeps it)."""
        w = self._core.container_started(workload_id)
        await self._commit()
        return w

    async def container_workloads(self, device_ids: list[str]) -> list[Workload]:
        """Running workloads that carry a container, on these GPUs (the agent runs them)."""
        ids = set(device_ids)
        return [w for w in self._core.running().values()
                if w.container is not None and w.device_id in ids]

    async def preempt(self, device_id: str, workload_id: str, detail: str) -> bool:
        """The optimizer's explicit preemption for a facility power cap: the workload holding
        ``device_id`` goes back to the queue (its run so far metered) and its GPU is given
        back. False when that workload no longer holds it."""
        if self._core.assigned.get(device_id) != workload_id:
            return False
        w = self._core.requeue(workload_id, f"preempted: {detail}"[:200])
        await self._commit()
        await self._scheduler.give_back(device_id, w.id)
        self._wake_sched.set()
        return True

    async def usage(self, owner: str | None = None) -> UsageTotals:
        await self._commit()
        return await asyncio.to_thread(self._repo.usage, owner)

    async def acquire_inference_gpu(self, owner: str) -> str:
        return await self._scheduler.acquire_inference_gpu(owner)

    async def stats(self) -> RouterStats:
        return RouterStats(os.getpid(), len(self._core.queues), len(self._core.active),
                           dict(self._core.assigned), dict(self._resumed),
                           self._core.queues.depth_by_priority())

    async def ready(self) -> bool:
        return True

    # -- loops ----------------------------------------------------------------------------
    def _wake(self, urgent: bool) -> None:
        self._wake_sched.set()
        if urgent:
            self._wake_urgent.set()

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

    async def _schedule_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake_sched.wait(), timeout=self._tick)
            except TimeoutError:
                pass
            self._wake_sched.clear()
            try:
                await self._scheduler.run_pass()
            except Exception:  # keep routing; the error is in the log and nothing was half-applied
                log.exception("scheduling pass failed")
                await asyncio.sleep(self._tick)
            try:
                record_live(self._sink, self._core.active.values())
            except Exception:  # metrics must never stop the router
                log.exception("workload metrics failed")
            # Admissions wake the loop; a pause lets a burst of them share one pass (each pass
            # asks every GPU for its status). Real-time work cuts the pause short.
            try:
                await asyncio.wait_for(self._wake_urgent.wait(), timeout=self._coalesce)
            except TimeoutError:
                pass
            self._wake_urgent.clear()


def launch_router(handles: Any, settings: Settings) -> Any:
    """Start (or reuse) the named router actor over the fleet's GPU actors (store migrated by
    the launch)."""
    actor = RouterActor.options(**router_actor_options(settings)).remote(settings, dict(handles.gpus))
    ray.get(actor.ready.remote())
    return actor


def find_router(settings: Settings) -> Any:
    try:
        return ray.get_actor(router_actor_name(), namespace=settings.ray.namespace)
    except ValueError:
        raise RouterUnavailableError(
            f"no router running in Ray namespace {settings.ray.namespace!r}") from None
