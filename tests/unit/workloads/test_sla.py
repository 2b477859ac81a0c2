"""SLA terms while queued: max latency to the first start, and the deadline to finish by."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from hcp.errors import InvalidWorkloadError
from hcp.workloads.metering import PriceTable
from hcp.workloads.router import WorkloadRouter
from hcp.workloads.types import WorkloadState

from .helpers import T0, FakeClock, gpu

S = WorkloadState


def _router() -> tuple[WorkloadRouter, FakeClock]:
    ids = (f"w{i}" for i in itertools.count(1))
    clock = FakeClock()
    return WorkloadRouter(None, PriceTable.of({"H100": 3_600_000}, 0), clock,
                          gpu_models={"g0": "H100"}, new_id=lambda: next(ids)), clock


def _run_planned(r: WorkloadRouter, mode: str = "IDLE") -> list[str]:
    started = []
    for p in r.plan([gpu("g0", mode=mode)]):
        r.mark_scheduled(p.workload_id, p.device_id)
        started.append(r.mark_running(p.workload_id).id)
    return started


def test_a_workload_not_started_within_its_max_latency_fails_with_the_reason() -> None:
    r, clock = _router()
    busy = r.admit("a", {"type": "training", "priority": 5, "duration_seconds": 600})
    assert _run_planned(r) == [busy.id]  # the only GPU is taken
    waiting = r.admit("b", {"type": "inference", "priority": 5, "duration_seconds": 10,
                            "sla": {"max_latency_ms": 2000}})
    patient = r.admit("c", {"type": "batch", "priority": 5, "duration_seconds": 10})
    clock.advance(1.9)
    assert r.fail_sla_breaches() == []
    clock.advance(0.2)
    assert r.fail_sla_breaches() == [waiting.id]
    w = r.get(waiting.id)
    assert w.state is S.FAILED and w.detail.startswith("SLA breached: not started within")
    assert w not in r.queues and r.get(patient.id).state is S.QUEUED
    assert r.fail_sla_breaches() == []  # once


def test_a_started_workload_is_no_longer_held_to_its_latency() -> None:
    r, clock = _router()
    w = r.admit("b", {"type": "inference", "priority": 5, "duration_seconds": 100,
                      "sla": {"max_latency_ms": 1000}})
    assert _run_planned(r) == [w.id]
    clock.advance(10)
    r.requeue(w.id, "preempted")  # back in the queue after running 10 s
    clock.advance(60)
    assert r.fail_sla_breaches() == [] and r.get(w.id).state is S.QUEUED


def test_deadline_counts_the_gpu_time_still_needed() -> None:
    r, clock = _router()
    deadline = (T0 + timedelta(seconds=100)).isoformat()
    w = r.admit("a", {"type": "batch", "priority": 3, "duration_seconds": 60,
                      "sla": {"deadline": deadline}})
    assert _run_planned(r) == [w.id]
    clock.advance(30)  # 30 s done, 30 s needed: it must restart by T0+70
    r.requeue(w.id, "preempted")
    clock.advance(39)
    assert r.fail_sla_breaches() == []
    clock.advance(2)
    assert r.fail_sla_breaches() == [w.id]
    assert "cannot finish by the SLA deadline" in r.get(w.id).detail
    assert r.get(w.id).gpu_ms == 30_000  # the run it had is still metered


def test_unreachable_or_naive_deadlines_are_refused_at_admission() -> None:
    r, _ = _router()
    soon = (T0 + timedelta(seconds=30)).isoformat()
    with pytest.raises(InvalidWorkloadError, match="SLA out of reach"):
        r.admit("a", {"type": "batch", "priority": 3, "duration_seconds": 60,
                      "sla": {"deadline": soon}})
    with pytest.raises(InvalidWorkloadError, match="timezone"):
        r.admit("a", {"type": "batch", "priority": 3, "duration_seconds": 60,
                      "sla": {"deadline": "2030-01-01T00:00:00"}})
    # Refusals leave nothing behind: the next admission gets the next sequence number.
    ok = r.admit("a", {"type": "batch", "priority": 3, "duration_seconds": 60})
    assert ok.seq == 1 and len(r.queues) == 1


def test_terms_survive_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hcp.store.db import connect, migrate
    from hcp.workloads.repository import WorkloadRepository

    engine = connect(f"sqlite:///{tmp_path / 'sla.db'}")
    migrate(engine)
    clock = FakeClock()
    first = WorkloadRouter(WorkloadRepository(engine), PriceTable.of({}, 0), clock)
    w = first.admit("a", {"type": "inference", "priority": 5, "duration_seconds": 5,
                          "sla": {"max_latency_ms": 5000}})
    first.flush()
    again = WorkloadRouter(WorkloadRepository(engine), PriceTable.of({}, 0), clock)
    again.resume()
    clock.advance(6)
    assert again.fail_sla_breaches() == [w.id]
    again.flush()
    assert WorkloadRepository(engine).get(w.id).state is S.FAILED
    engine.dispose()
