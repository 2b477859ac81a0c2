"""The router's metrics (the catalogue's ``workloads`` area) over a MetricsSink: the workloads
held in each live state, each workload's wait from admission to its first start, and mining
preempted to place one. The router core records as it moves a workload
(``WorkloadRouter(metrics=...)``); the router actor sets the gauges after every pass."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from hcp.observability.sink import MetricsSink
from hcp.workloads.types import Workload, WorkloadState, WorkloadType

LIVE = (WorkloadState.QUEUED, WorkloadState.SCHEDULED, WorkloadState.RUNNING)


def record_live(sink: MetricsSink, active: Iterable[Workload]) -> None:
    """Every live (state, type) pair, zeros included: a gauge left at its last value would
    show work that has ended. Finished workloads are in the store, not in a gauge."""
    n = Counter((w.state, w.type) for w in active)
    for state in LIVE:
        for kind in WorkloadType:
            sink.set("hcp_workloads", n.get((state, kind), 0), state=state.value, type=kind.value)


def record_started(sink: MetricsSink, w: Workload) -> None:
    """A workload's first start (a requeued one's later starts are not a new wait)."""
    if w.started_at is None or w.gpu_ms:
        return
    sink.observe("hcp_workload_queue_wait_seconds",
                 max(0.0, (w.started_at - w.created_at).total_seconds()),
                 type=w.type.value, priority=str(w.priority))


def record_preemption(sink: MetricsSink, kind: str = "gpu", n: int = 1) -> None:
    """``n`` = 0 where the router starts: the series is exported before its first preemption."""
    sink.inc("hcp_workload_preemptions_total", n, kind=kind)
