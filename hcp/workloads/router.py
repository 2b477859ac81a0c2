"""The router core: admission, queues, placement decisions, state changes and a durable outbox.

It never talks to Ray or to GPUs: the actor (``actors/router.py``) feeds it GPU snapshots,
carries out the switches it asks for, and flushes its outbox to the store. Every state change
goes through the state machine and lands in the outbox as a row update plus an ``events`` row,
so the store is the single source of truth a restarted router resumes from.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from copy import copy
from datetime import datetime
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from hcp.clock import Clock, SystemClock
from hcp.errors import (
    HcpError,
    IdempotencyKeyReusedError,
    InvalidWorkloadError,
    RouterBusyError,
    UnsatisfiableWorkloadError,
    WorkloadNotFoundError,
    WorkloadTransitionError,
)
from hcp.fleet.modes import GpuMode
from hcp.observability.sink import MetricsSink, NullSink
from hcp.observability.workloads import record_preemption, record_started
from hcp.store.events import EventKind
from hcp.workloads.metering import PriceTable, cost_micro_usd, run_ms
from hcp.workloads.queue import PriorityQueues
from hcp.workloads.repository import (
    Batch,
    GpuInventory,
    WorkloadRepository,
    to_row,
    workload_event,
)
from hcp.workloads.scoring import GpuView, Placement, choose, fits, why_waiting
from hcp.workloads.sla import SlaWatch, start_by
from hcp.workloads.states import check_transition
from hcp.workloads.types import (
    ACTIVE_STATES,
    Admission,
    Submission,
    Workload,
    WorkloadSpec,
    WorkloadState,
)

log = logging.getLogger(__name__)
S = WorkloadState
# Modes a GPU can take any workload in without preempting mining (RENTED never: a customer's).
_SERVING = (GpuMode.INFERENCE, GpuMode.IDLE)
_WAIT_NOTES = 100  # queued workloads behind a full pass whose wait reason is refreshed per pass


def parse_spec(spec: WorkloadSpec | Mapping[str, Any]) -> WorkloadSpec:
    if isinstance(spec, WorkloadSpec):
        return spec
    try:
        return WorkloadSpec.model_validate(spec)
    except PydanticValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
        raise InvalidWorkloadError("invalid workload spec: " + "; ".join(problems),
                                   problems=problems) from None


class WorkloadRouter:
    def __init__(self, repo: WorkloadRepository | None, prices: PriceTable, clock: Clock | None = None,
                 gpu_models: Mapping[str, str] | None = None, max_queued: int = 200_000,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
                 fleet: Iterable[GpuInventory] = (), metrics: MetricsSink | None = None) -> None:
        self.repo = repo
        self.metrics: MetricsSink = metrics or NullSink()
        self.prices = prices
        self.clock = clock or SystemClock()
        self.gpu_models: dict[str, str] = dict(gpu_models or {})  # device id -> model, for pricing
        # Every GPU the router may ever place on: work none of them can run is refused at once.
        self.fleet = [GpuView(g.device_id, g.model, g.memory_gb, g.facility, GpuMode.IDLE)
                      for g in fleet]
        self.max_queued = max_queued
        self._new_id = new_id
        self.queues = PriorityQueues()
        self.sla = SlaWatch()
        self.active: dict[str, Workload] = {}  # queued / scheduled / running, by id
        self.assigned: dict[str, str] = {}  # device id -> workload id (scheduled or running)
        self._seq = 0
        self._new: dict[str, Workload] = {}  # admitted, not yet in the store
        self._dirty: dict[str, Workload] = {}  # in the store, changed since
        self._events: list[dict[str, Any]] = []
        self._persisted: set[str] = set()
        # Recently finished workloads: the router is the only writer, so its copy is the truth
        # even while the write is still in flight (a read-back could see the older row).
        self._finished: OrderedDict[str, Workload] = OrderedDict()
        self.finished_cache = 50_000
        # Idempotency keys admitted by this process (the store has the older ones) and keys
        # just looked up and found absent by preload_keys.
        self._keys: OrderedDict[tuple[str, str], Workload] = OrderedDict()
        self._absent: set[tuple[str, str]] = set()

    # -- lifecycle ----------------------------------------------------------------------
    def resume(self) -> dict[str, int]:
        """Reload every unfinished workload from the store (after a start or a restart).

        Running ones keep their GPU and start time, so metering resumes where it was. A
        scheduled one may or may not have had its GPU switched before the crash: it is
        requeued (and its GPU released) and placed again.
        """
        if self.repo is None:
            return {}
        self._seq = self.repo.max_seq()
        counts = {st.value: 0 for st in ACTIVE_STATES}
        for w in self.repo.load_active():
            self._persisted.add(w.id)
            counts[w.state.value] += 1
            self.active[w.id] = w
            if w.state is S.SCHEDULED:
                self._transition(w, S.QUEUED, "router restarted before the workload started")
                w.device_id, w.scheduled_at = None, None
            if w.state is S.QUEUED:
                self.queues.push(w)
                self.sla.watch(w)
            else:
                self.assigned[w.device_id or ""] = w.id
        self.assigned.pop("", None)
        return counts

    # -- admission ----------------------------------------------------------------------
    def admit(self, owner: str, spec: WorkloadSpec | Mapping[str, Any]) -> Workload:
        """Validate and queue one workload; durable once the outbox is flushed."""
        return self.admit_keyed(owner, spec, None)[0]

    def admit_keyed(self, owner: str, spec: WorkloadSpec | Mapping[str, Any],
                    idempotency_key: str | None) -> tuple[Workload, bool]:
        """``admit`` with the client's idempotency key: (workload, whether it already existed).

        The same owner and key give back the workload the first submission created, however
        often the client retries (after a timeout, a crash of the router or of the API), as
        long as the spec is the same; another spec under a used key is a 409.
        """
        if not owner or len(owner) > 128:
            raise InvalidWorkloadError("owner must be 1..128 characters", problems=["owner"])
        s = parse_spec(spec)
        if idempotency_key is not None:
            if not 1 <= len(idempotency_key) <= 200:
                raise InvalidWorkloadError("Idempotency-Key must be 1..200 characters",
                                           problems=["idempotency_key"])
            first = self._keyed(owner, idempotency_key)
            if first is not None:
                if _spec_of(first) != _spec_of(s):
                    raise IdempotencyKeyReusedError(
                        f"Idempotency-Key {idempotency_key!r} was used for another workload",
                        workload_id=first.id)
                return first, True
        self._check_satisfiable(s)
        if len(self.queues) >= self.max_queued:
            raise RouterBusyError(f"router queue is full ({self.max_queued} workloads)",
                                  queued=len(self.queues))
        self._seq += 1
        w = Workload(
            id=self._new_id(), owner=owner, type=s.type, priority=s.priority, state=S.QUEUED,
            requirements=s.requirements.model_dump(exclude_none=True),
            sla=s.sla.model_dump(exclude_none=True, mode="json"),
            interruptible=s.interruptible, duration_seconds=s.duration_seconds,
            created_at=self.clock.now(), seq=self._seq, name=s.name, idempotency_key=idempotency_key,
            container=s.container.model_dump(mode="json") if s.container is not None else None,
        )
        try:
            limit = start_by(w)
        except (OverflowError, ValueError):  # a deadline at the edge of the calendar
            self._seq -= 1
            raise InvalidWorkloadError("sla.deadline is out of range", problems=["sla.deadline"]
                                       ) from None
        if limit is not None and limit[0] < w.created_at:
            self._seq -= 1
            raise InvalidWorkloadError(f"SLA out of reach at admission: {limit[1]}",
                                       problems=["sla.deadline"])
        self.sla.watch(w)
        self.active[w.id] = w
        self.queues.push(w)
        self._new[w.id] = w
        self._events.append(workload_event(w))
        if idempotency_key is not None:
            self._keys[(owner, idempotency_key)] = w
            if len(self._keys) > self.finished_cache:
                self._keys.popitem(last=False)  # long since in the store
        return w, False

    def _check_satisfiable(self, s: WorkloadSpec) -> None:
        if not self.fleet:
            return  # fleet unknown (a bare core in a test): nothing to check against
        req = s.requirements.model_dump(exclude_none=True)
        if any(fits(req, g) for g in self.fleet):
            return
        models = sorted({g.model for g in self.fleet})
        biggest = max(g.memory_gb for g in self.fleet)
        want = req.get("gpu_model")
        if want and not any(fits({"gpu_model": want}, g) for g in self.fleet):
            why = f"no {want} GPU in this fleet (it has {', '.join(models)})"
        else:
            why = (f"no {want or 'GPU'} with {req.get('min_memory_gb')} GB or more in this fleet "
                   f"(the largest has {biggest:g} GB)")
        raise UnsatisfiableWorkloadError(f"this workload can never run here: {why}",
                                         problems=["requirements"])

    def admit_batch(self, items: Iterable[Submission | tuple[str, WorkloadSpec | Mapping[str, Any],
                                                             str | None]]
                    ) -> tuple[list[Admission | HcpError], bool]:
        """Admit independent submissions (``Submission``: owner, spec, idempotency key; a plain
        tuple with a spec mapping is parsed the same way): each gets its own
        answer, the admitted view (``"replayed"``: its key had admitted it before) or the
        typed error that refused it, so one bad item never refuses the others. Also says
        whether any new admission is real-time. Durable once the outbox is committed."""
        answers: list[Admission | HcpError] = []
        urgent = False
        for owner, spec, key in items:
            try:
                w, replayed = self.admit_keyed(owner, spec, key)
            except HcpError as exc:
                answers.append(exc)
                continue
            except Exception:  # a defect this item hit must not refuse the other customers'
                log.exception("admission of one workload failed")
                answers.append(InvalidWorkloadError("this workload could not be admitted",
                                                    problems=["body"]))
                continue
            urgent = urgent or (w.real_time and not replayed)
            answers.append(Admission(copy(w), replayed))
        return answers, urgent

    def preload_keys(self, keys: list[tuple[str, str]]) -> None:
        """Look up many (owner, key) pairs in the store at once (before a batch of admits)."""
        wanted = [k for k in keys if k not in self._keys and k not in self._absent]
        if not wanted or self.repo is None:
            return
        found = self.repo.by_keys(wanted)
        for k in wanted:
            if k in found:
                self._keys[k] = found[k]
            else:
                self._absent.add(k)

    def _keyed(self, owner: str, key: str) -> Workload | None:
        k = (owner, key)
        w = self._keys.get(k)
        if w is None and k not in self._absent and self.repo is not None:
            w = self.repo.by_keys([k]).get(k)
        self._absent.discard(k)  # only valid until this admission decides
        if w is not None:
            # The live object if the router still holds it, so the answer is current.
            w = self.active.get(w.id) or self._finished.get(w.id) or w
        return w

    # -- reads --------------------------------------------------------------------------
    def get(self, workload_id: str) -> Workload:
        w = self.active.get(workload_id) or self._finished.get(workload_id)
        if w is None and self.repo is not None:
            w = self.repo.get(workload_id)
        if w is None:
            raise WorkloadNotFoundError(f"no workload {workload_id!r}", workload_id=workload_id)
        return w

    def running(self) -> dict[str, Workload]:
        return {w.id: w for w in self.active.values() if w.state is S.RUNNING}

    # -- placement ----------------------------------------------------------------------
    def plan(self, gpus: Iterable[GpuView]) -> list[Placement]:
        """Placements for queued work, highest priority first, given GPU snapshots.

        The snapshots are updated as placements are made so one GPU is never given twice.
        Queued work that fits nowhere stays queued without blocking the work behind it.
        """
        # A GPU someone else holds (a rental, or a workload hold not yet given back) is busy.
        views = {g.device_id: _with_busy(g, self.assigned.get(g.device_id) or g.held_by)
                 for g in gpus}
        running = self.running()
        out: list[Placement] = []
        serving, for_real_time = _room(views, running)
        # Serving order means the loop can stop at the first workload nothing is left for:
        # everything behind it is of the same or lower priority. This keeps a pass cheap when
        # thousands wait and no GPU is free (the pass runs after every admission).
        queued = iter(self.queues)
        for w in queued:
            if not serving and (not w.real_time or not for_real_time):
                self._note_wait(w, views)
                for behind in itertools.islice(queued, _WAIT_NOTES):
                    self._note_wait(behind, views)
                break
            p = choose(w, list(views.values()), running)
            if p is None:
                self._note_wait(w, views)
                continue
            out.append(p)
            views[p.device_id] = _with_busy(views[p.device_id], w.id, mode=GpuMode.INFERENCE)
            if p.victim_id:
                running.pop(p.victim_id, None)
            serving, for_real_time = _room(views, running)
        return out

    def _note_wait(self, w: Workload, views: Mapping[str, GpuView]) -> None:
        """Say why ``w`` waits; written only when the reason changes (no event: not a state)."""
        why = why_waiting(w, list(views.values()))
        if w.detail != why:
            w.detail = why
            if w.id not in self._new:
                self._dirty[w.id] = w

    def reconcile(self, gpus: Iterable[GpuView]) -> list[str]:
        """Requeue running work whose GPU left INFERENCE behind the router's back.

        The optimizer or an operator may switch a GPU while a workload holds it; the workload is
        then no longer running, whatever it was promised. Its run so far is metered. Returns ids.
        """
        moved = []
        for g in gpus:
            wid = self.assigned.get(g.device_id)
            w = self.active.get(wid) if wid else None
            if w is not None and w.state is S.RUNNING and g.mode is not GpuMode.INFERENCE:
                self.requeue(w.id, f"GPU {g.device_id} left INFERENCE (now {g.mode})")
                moved.append(w.id)
        return moved

    def mark_scheduled(self, workload_id: str, device_id: str, preempted_mining: bool = False) -> Workload:
        w = self._active(workload_id)
        check_transition(w.id, w.state, S.SCHEDULED)
        holder = self.assigned.get(device_id)
        if holder is not None and holder != w.id:
            raise ValueError(f"GPU {device_id} is held by {holder}")  # a planning bug, not user input
        self.queues.remove(w)
        w.device_id, w.scheduled_at = device_id, self.clock.now()
        w.preempted_mining = w.preempted_mining or preempted_mining
        self.assigned[device_id] = w.id
        self._transition(w, S.SCHEDULED, "preempted mining" if preempted_mining else "")
        if preempted_mining:
            self._record(record_preemption, self.metrics)
        return w

    def mark_running(self, workload_id: str) -> Workload:
        w = self._active(workload_id)
        check_transition(w.id, w.state, S.RUNNING)
        w.started_at = self.clock.now()
        self._transition(w, S.RUNNING, "")
        self._record(record_started, self.metrics, w)
        return w

    def container_started(self, workload_id: str) -> Workload:
        """The agent's container of a running workload started: its run segment (and its
        metering, and the count towards ``duration_seconds``) starts now, not at placement;
        the image pull before it is not the customer's GPU time. Said again (an agent's retry,
        a reconcile) it changes nothing."""
        w = self._active(workload_id)
        if w.container is None:
            raise InvalidWorkloadError(f"workload {w.id} has no container", workload_id=w.id)
        if w.state is not S.RUNNING:
            raise WorkloadTransitionError(f"workload {w.id} is {w.state.value}, not running",
                                          workload_id=w.id, state=w.state.value,
                                          target=S.RUNNING.value)
        if w.container_started_at is None:
            w.started_at = w.container_started_at = self.clock.now()
            if w.id not in self._new:
                self._dirty[w.id] = w
        return w

    def requeue(self, workload_id: str, detail: str) -> Workload:
        """Back to the queue: the switch failed (scheduled) or it was preempted (running)."""
        w = self._active(workload_id)
        check_transition(w.id, w.state, S.QUEUED)
        self._end_segment(w)
        w.container_started_at = None  # placed again, it is a fresh launch
        self._release(w, detail)
        w.scheduled_at = None
        self._transition(w, S.QUEUED, detail)
        self.queues.push(w)
        self.sla.watch(w)
        return w

    # -- endings ------------------------------------------------------------------------
    def cancel(self, workload_id: str, detail: str = "cancelled") -> Workload:
        return self._finish(self.get(workload_id), S.CANCELLED, detail)

    def complete(self, workload_id: str, ok: bool = True, detail: str = "") -> Workload:
        return self._finish(self.get(workload_id), S.COMPLETED if ok else S.FAILED, detail)

    def expired(self, now: datetime | None = None) -> list[str]:
        """Running workloads whose ``duration_seconds`` of GPU time (all segments) has elapsed."""
        now = now or self.clock.now()
        return [w.id for w in self.active.values() if w.state is S.RUNNING and w.started_at is not None
                and w.gpu_ms + run_ms(w.started_at, now) >= w.duration_seconds * 1000]

    def fail_sla_breaches(self, now: datetime | None = None) -> list[str]:
        """Fail the queued workloads that can no longer meet their SLA; their ids."""
        now = now or self.clock.now()
        failed = []
        for w, why in self.sla.due(now, self.active):
            self._finish(w, S.FAILED, f"SLA breached: {why}")
            failed.append(w.id)
        return failed

    def _finish(self, w: Workload, target: WorkloadState, detail: str) -> Workload:
        check_transition(w.id, w.state, target)
        self.queues.remove(w)
        self._end_segment(w)
        w.finished_at = self.clock.now()
        self._release(w, detail)
        self._transition(w, target, detail)
        self.active.pop(w.id, None)
        self._finished[w.id] = w
        if len(self._finished) > self.finished_cache:
            self._finished.popitem(last=False)
        return w

    def _end_segment(self, w: Workload) -> None:
        """Meter the run segment that ends now (only a running workload has one; a container
        workload's from its container's start: none when it never started)."""
        if w.state is not S.RUNNING or w.started_at is None:
            return
        if w.container is not None and w.container_started_at is None:
            return
        ms = run_ms(w.started_at, self.clock.now())
        w.gpu_ms += ms
        w.cost_micro_usd += cost_micro_usd(ms, self.prices.price_for(self.gpu_models.get(w.device_id or "")))

    def _release(self, w: Workload, detail: str) -> None:
        if w.device_id is None:
            return
        if self.assigned.get(w.device_id) == w.id:
            del self.assigned[w.device_id]
        if w.preempted_mining:
            # The GPU stays in INFERENCE: switching back is the optimizer's call, and this is its cue.
            self._events.append(workload_event(w, kind=EventKind.GPU_RELEASED.value, reason=detail or None,
                                               previous_mode="MINING", mode="INFERENCE"))

    def _transition(self, w: Workload, target: WorkloadState, detail: str) -> None:
        w.state = target
        if detail:
            w.detail = detail
        if w.id not in self._new:
            self._dirty[w.id] = w
        self._events.append(workload_event(w, reason=detail or None))

    @staticmethod
    def _record(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a metric must never stop a workload's transition
            log.exception("workload metrics failed")

    def _active(self, workload_id: str) -> Workload:
        w = self.active.get(workload_id)
        if w is None:
            return self.get(workload_id)  # raises not-found, or is terminal: check_transition refuses
        return w

    def note_event(self, event: dict[str, Any]) -> None:
        self._events.append(event)

    # -- outbox -------------------------------------------------------------------------
    def pending(self) -> bool:
        return bool(self._new or self._dirty or self._events)

    def drain(self) -> Batch:
        """Everything changed since the last drain, as row dicts, ready for ``repo.apply``."""
        batch = Batch(inserts=[to_row(w) for w in self._new.values()],
                      updates=[to_row(w) for w in self._dirty.values()], events=self._events,
                      refs={**self._dirty, **self._new})
        self._persisted.update(self._new)
        self._new, self._dirty, self._events = {}, {}, []
        return batch

    def flush(self) -> int:
        """Drain and write synchronously; returns rows written (inserts + updates)."""
        batch = self.drain()
        try:
            if self.repo is not None:
                self.repo.apply(batch)
        except Exception:
            self.undo_drain(batch)
            raise
        return len(batch.inserts) + len(batch.updates)

    def commit(self, batch: Batch) -> dict[str, Exception]:
        """Write one drained batch; returns the new workloads the store refused on their own.

        A batch carries many customers' admissions. When the store refuses it, the changes
        to existing workloads are written without the new ones, then each new workload on
        its own: one that the store cannot hold fails alone, the others are committed. If
        the store refuses even that, it is down: everything is undone and the error raised.
        """
        if self.repo is None or not batch:
            return {}
        try:
            self.repo.apply(batch)
            return {}
        except Exception:  # noqa: BLE001 -- find out below whether the store or an item failed
            pass
        base, singles = _split(batch)
        try:
            if base:
                self.repo.apply(base)
            else:
                self.repo.ping()  # a lone new workload: is it the store, or this item?
        except Exception:
            self.undo_drain(batch)
            raise
        refused: dict[str, Exception] = {}
        for wid, single in singles:
            try:
                self.repo.apply(single)
            except Exception as exc:  # noqa: BLE001 -- this item's fault, reported to its submitter
                self.undo_drain(single)
                refused[wid] = exc
        return refused

    def undo_drain(self, batch: Batch) -> list[str]:
        """A batch the store refused: forget its never-stored workloads, retry the rest later.

        Returns the ids of dropped new workloads (their submitters get the store error).
        """
        dropped = []
        for row in batch.inserts:
            wid = row["id"]
            self._persisted.discard(wid)
            w = self.active.pop(wid, None) or self._finished.pop(wid, None)
            if w is not None:
                if w.idempotency_key is not None:
                    self._keys.pop((w.owner, w.idempotency_key), None)
                self.queues.remove(w)
                if w.device_id and self.assigned.get(w.device_id) == wid:
                    del self.assigned[w.device_id]
            dropped.append(wid)
        new_ids = set(dropped)
        for row in batch.updates:
            # Rewritten from the live object at the next drain: its latest state wins.
            self._dirty.setdefault(row["id"], batch.refs[row["id"]])
        kept = [e for e in batch.events if (e.get("payload") or {}).get("workload_id") not in new_ids]
        self._events = kept + self._events
        return dropped


def _split(batch: Batch) -> tuple[Batch, list[tuple[str, Batch]]]:
    """(the batch without its new workloads, one batch per new workload with its events)."""
    def owner(e: dict[str, Any]) -> Any:
        return (e.get("payload") or {}).get("workload_id")

    new_ids = {r["id"] for r in batch.inserts}
    base = Batch(updates=batch.updates, events=[e for e in batch.events if owner(e) not in new_ids],
                 refs={k: v for k, v in batch.refs.items() if k not in new_ids})
    singles = [(r["id"], Batch(inserts=[r], events=[e for e in batch.events if owner(e) == r["id"]],
                               refs={r["id"]: batch.refs[r["id"]]}))
               for r in batch.inserts]
    return base, singles


def _spec_of(w: Workload | WorkloadSpec) -> tuple[Any, ...]:
    """What a retry must repeat for its key to mean the same workload."""
    if isinstance(w, WorkloadSpec):
        return (w.type.value, w.priority, w.requirements.model_dump(exclude_none=True),
                w.sla.model_dump(exclude_none=True, mode="json"), w.interruptible,
                w.duration_seconds, w.name,
                w.container.model_dump(mode="json") if w.container is not None else None)
    return (w.type.value, w.priority, dict(w.requirements), dict(w.sla), w.interruptible,
            w.duration_seconds, w.name, w.container)


def _room(views: Mapping[str, GpuView], running: Mapping[str, Workload]) -> tuple[int, int]:
    """(free GPUs any workload may take, extra GPUs only real-time work may take)."""
    serving = sum(1 for g in views.values() if g.busy_with is None and g.mode in _SERVING)
    mining = sum(1 for g in views.values() if g.busy_with is None and g.mode is GpuMode.MINING)
    victims = sum(1 for g in views.values() if g.busy_with in running
                  and g.mode is not GpuMode.CURTAILED
                  and running[g.busy_with].interruptible and running[g.busy_with].priority < 10)
    return serving, mining + victims


def _with_busy(g: GpuView, busy: str | None, mode: GpuMode | None = None) -> GpuView:
    from dataclasses import replace

    return replace(g, busy_with=busy, mode=mode or g.mode)
