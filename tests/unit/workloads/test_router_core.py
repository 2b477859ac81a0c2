"""The router core without a store: admission, planning, lifecycle, metering, outbox."""

from __future__ import annotations

import itertools

import pytest

from hcp.errors import (
    InvalidWorkloadError,
    RouterBusyError,
    WorkloadNotFoundError,
    WorkloadTransitionError,
)
from hcp.workloads.metering import PriceTable
from hcp.workloads.router import WorkloadRouter
from hcp.workloads.scoring import Action
from hcp.workloads.types import WorkloadState

from .helpers import FakeClock, gpu

S = WorkloadState
PRICE = 3_600_000  # $3.60/h: one micro-dollar per GPU-millisecond


def _router(**kw):  # type: ignore[no-untyped-def]
    ids = (f"w{i}" for i in itertools.count(1))
    clock = FakeClock()
    r = WorkloadRouter(None, PriceTable.of({"H100": PRICE}, 0), clock,
                       gpu_models={"g0": "H100", "g1": "H100"}, new_id=lambda: next(ids), **kw)
    return r, clock


def _start(r: WorkloadRouter, gpus):  # type: ignore[no-untyped-def]
    out = []
    for p in r.plan(gpus):
        if p.victim_id:
            r.requeue(p.victim_id, "preempted")
        r.mark_scheduled(p.workload_id, p.device_id, p.action is Action.PREEMPT_MINING)
        out.append((r.mark_running(p.workload_id).id, p.device_id, p.action))
    return out


def test_admission_validates_and_orders() -> None:
    r, _ = _router()
    for p in (3, 9, 3, 10):
        r.admit("alice", {"type": "inference", "priority": p})
    assert [w.id for w in r.queues] == ["w4", "w2", "w1", "w3"]
    with pytest.raises(InvalidWorkloadError):
        r.admit("alice", {"type": "inference", "priority": 11})
    with pytest.raises(InvalidWorkloadError):
        r.admit("", {"type": "inference", "priority": 1})
    assert len(r.queues) == 4


def test_queue_limit_refuses_with_typed_error() -> None:
    r, _ = _router(max_queued=2)
    r.admit("a", {"type": "batch", "priority": 1})
    r.admit("a", {"type": "batch", "priority": 1})
    with pytest.raises(RouterBusyError) as ei:
        r.admit("a", {"type": "batch", "priority": 1})
    assert ei.value.http_status == 503


def test_plan_gives_each_gpu_once_highest_priority_first() -> None:
    r, _ = _router()
    r.admit("a", {"type": "batch", "priority": 2})
    r.admit("a", {"type": "batch", "priority": 6})
    r.admit("a", {"type": "batch", "priority": 4})
    started = _start(r, [gpu("g0", "IDLE"), gpu("g1", "INFERENCE")])
    assert sorted(w for w, _, _ in started) == ["w2", "w3"]
    assert {d for _, d, _ in started} == {"g0", "g1"}
    assert [w.id for w in r.queues] == ["w1"]
    assert r.assigned == {d: w for w, d, _ in started}


def test_a_blocked_head_does_not_block_others() -> None:
    r, _ = _router()
    r.admit("a", {"type": "batch", "priority": 9, "requirements": {"gpu_model": "A100"}})
    r.admit("a", {"type": "batch", "priority": 1})
    assert [(w, d) for w, d, _ in _start(r, [gpu("g0", "IDLE")])] == [("w2", "g0")]


def test_real_time_preempts_mining_and_release_is_recorded() -> None:
    r, clock = _router()
    r.admit("bob", {"type": "inference", "priority": 7})
    r.admit("bob", {"type": "inference", "priority": 8})
    started = _start(r, [gpu("g0", "MINING")])
    assert started == [("w2", "g0", Action.PREEMPT_MINING)]
    w = r.get("w2")
    assert w.preempted_mining and w.state is S.RUNNING
    r.drain()
    clock.advance(2.5)
    r.complete("w2")
    batch = r.drain()
    kinds = [(e["kind"], e["payload"]["state"]) for e in batch.events]
    assert kinds == [("gpu_released", "running"), ("workload", "completed")]
    rel = batch.events[0]["payload"]
    assert rel["device_id"] == "g0" and rel["previous_mode"] == "MINING"
    assert (w.gpu_ms, w.cost_micro_usd) == (2500, 2500)
    assert "g0" not in r.assigned


def test_lifecycle_events_and_terminal_conflicts() -> None:
    r, clock = _router()
    w = r.admit("a", {"type": "training", "priority": 5})
    _start(r, [gpu("g0", "INFERENCE")])
    clock.advance(1)
    r.cancel(w.id)
    batch = r.drain()
    assert [(row["id"], row["state"]) for row in batch.inserts] == [("w1", "cancelled")]
    assert [e["payload"]["state"] for e in batch.events] == ["queued", "scheduled", "running", "cancelled"]
    assert all(e["payload"]["workload_id"] == "w1" and e["kind"] == "workload" for e in batch.events)
    with pytest.raises(WorkloadTransitionError):
        r.cancel(w.id)
    with pytest.raises(WorkloadTransitionError):
        r.complete(w.id)
    with pytest.raises(WorkloadNotFoundError) as ei:
        r.get("nope")
    assert ei.value.code == "workload_not_found"
    assert w.gpu_ms == 1000 and w.cost_micro_usd == 1000


def test_expiry_and_segment_metering_across_preemption() -> None:
    r, clock = _router()
    low = r.admit("a", {"type": "batch", "priority": 2, "duration_seconds": 10})
    _start(r, [gpu("g0", "INFERENCE")])
    clock.advance(4)
    rt = r.admit("b", {"type": "inference", "priority": 9, "duration_seconds": 5})
    started = _start(r, [gpu("g0", "INFERENCE")])
    assert started == [(rt.id, "g0", Action.PREEMPT_WORKLOAD)]
    assert low.state is S.QUEUED and (low.gpu_ms, low.cost_micro_usd) == (4000, 4000)
    clock.advance(4.999)
    assert r.expired() == []
    clock.advance(0.001)
    assert r.expired() == [rt.id]
    r.complete(rt.id, ok=False, detail="boom")
    assert rt.state is S.FAILED and rt.detail == "boom" and rt.gpu_ms == 5000
    _start(r, [gpu("g0", "INFERENCE")])
    clock.advance(6)
    assert r.expired() == [low.id]
    r.complete(low.id)
    assert (low.gpu_ms, low.cost_micro_usd) == (10_000, 10_000)  # 4 s + 6 s, not more


def test_non_interruptible_work_is_never_requeued() -> None:
    r, _ = _router()
    fixed = r.admit("a", {"type": "training", "priority": 1, "interruptible": False})
    _start(r, [gpu("g0", "INFERENCE")])
    r.admit("b", {"type": "inference", "priority": 10})
    assert _start(r, [gpu("g0", "INFERENCE")]) == []
    assert fixed.state is S.RUNNING


def test_outbox_separates_inserts_from_updates_and_undo_retries() -> None:
    r, _ = _router()
    a = r.admit("a", {"type": "batch", "priority": 5})
    first = r.drain()
    assert [x["id"] for x in first.inserts] == [a.id] and not first.updates
    assert not r.pending()
    b = r.admit("a", {"type": "batch", "priority": 5})
    r.cancel(a.id)
    failed = r.drain()
    dropped = r.undo_drain(failed)  # the store refused this batch
    assert dropped == [b.id]
    with pytest.raises(WorkloadNotFoundError):
        r.get(b.id)
    retry = r.drain()
    assert [x["id"] for x in retry.updates] == [a.id] and retry.updates[0]["state"] == "cancelled"
    assert not retry.inserts
    assert [e["payload"]["workload_id"] for e in retry.events] == [a.id]


def test_plan_with_nothing_free_only_places_real_time_work() -> None:
    r, _ = _router()
    for _ in range(50):
        r.admit("a", {"type": "batch", "priority": 7})
    rt = r.admit("b", {"type": "inference", "priority": 8})
    placed = r.plan([gpu("g0", "MINING"), gpu("g1", "CURTAILED")])
    assert [(p.workload_id, p.device_id, p.action) for p in placed] == [
        (rt.id, "g0", Action.PREEMPT_MINING)]
    assert r.plan([gpu("g0", "CURTAILED")]) == []


def test_running_work_whose_gpu_was_switched_away_is_requeued_and_metered() -> None:
    r, clock = _router()
    w = r.admit("a", {"type": "training", "priority": 3, "interruptible": False})
    _start(r, [gpu("g0", "INFERENCE")])
    clock.advance(2)
    assert r.reconcile([gpu("g0", "INFERENCE")]) == []
    assert r.reconcile([gpu("g0", "MINING")]) == [w.id]
    assert w.state is S.QUEUED and w.gpu_ms == 2000 and r.assigned == {}
    assert "left INFERENCE" in w.detail


def test_typed_submissions_and_spec_mappings_are_admitted_alike() -> None:
    from hcp.workloads.router import parse_spec
    from hcp.workloads.types import Submission

    r, _ = _router()
    spec = {"type": "batch", "priority": 4, "duration_seconds": 30}
    answers, urgent = r.admit_batch([Submission("alice", parse_spec(spec), "k-1"),
                                     ("bob", spec, None), Submission("alice", parse_spec(spec), "k-1")])
    first, second, replay = answers
    assert not urgent and first.workload.owner == "alice" and second.workload.owner == "bob"
    assert replay.replayed and replay.workload.id == first.workload.id
    assert first.workload.priority == second.workload.priority == 4
