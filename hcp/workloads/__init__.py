"""Workloads: typed specs, state machine, priority queues, GPU scoring, metering and the router core."""

from hcp.workloads.types import (
    REAL_TIME_PRIORITY,
    Requirements,
    Sla,
    Workload,
    WorkloadSpec,
    WorkloadState,
    WorkloadType,
)

__all__ = ["REAL_TIME_PRIORITY", "Requirements", "Sla", "Workload", "WorkloadSpec", "WorkloadState",
           "WorkloadType"]
