"""The router's metrics, recorded by the real core as it moves workloads."""

from __future__ import annotations

from hcp.observability.sink import PrometheusSink
from hcp.observability.workloads import record_live
from hcp.workloads.metering import PriceTable
from hcp.workloads.router import WorkloadRouter

from .helpers import FakeClock


def test_waits_preemptions_and_live_states_are_recorded() -> None:
    clock = FakeClock()
    sink = PrometheusSink()
    r = WorkloadRouter(None, PriceTable.of({"H100": 1_000_000}, 0), clock,
                       gpu_models={"g0": "H100"}, metrics=sink)
    a = r.admit("o", {"type": "batch", "priority": 3, "duration_seconds": 60})
    b = r.admit("o", {"type": "inference", "priority": 9, "duration_seconds": 60})
    record_live(sink, r.active.values())
    assert sink.value("hcp_workloads", state="queued", type="batch") == 1
    assert sink.value("hcp_workloads", state="queued", type="inference") == 1
    assert sink.value("hcp_workloads", state="running", type="batch") == 0

    clock.advance(4.0)
    r.mark_scheduled(a.id, "g0", preempted_mining=True)
    r.mark_running(a.id)
    record_live(sink, r.active.values())
    assert sink.value("hcp_workload_queue_wait_seconds_sum", type="batch", priority="3") == 4.0
    assert sink.value("hcp_workload_preemptions_total", kind="gpu") == 1
    assert sink.value("hcp_workloads", state="running", type="batch") == 1
    assert sink.value("hcp_workloads", state="queued", type="batch") == 0

    clock.advance(10.0)
    r.requeue(a.id, "preempted")  # a second start is not a second wait
    r.mark_scheduled(a.id, "g0")
    r.mark_running(a.id)
    r.complete(a.id)
    r.cancel(b.id)
    record_live(sink, r.active.values())
    assert sink.value("hcp_workload_queue_wait_seconds_count", type="batch", priority="3") == 1
    assert sink.value("hcp_workload_preemptions_total", kind="gpu") == 1
    assert sink.value("hcp_workloads", state="running", type="batch") == 0
    assert sink.value("hcp_workloads", state="queued", type="inference") == 0
