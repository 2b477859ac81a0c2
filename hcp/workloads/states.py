"""The workload state machine: which state changes are legal."""

from __future__ import annotations

from hcp.errors import WorkloadTransitionError
from hcp.workloads.types import WorkloadState

S = WorkloadState

# scheduled -> queued: the GPU could not be switched; running -> queued: preempted by a
# real-time workload (only interruptible ones). Terminal states have no way out.
ALLOWED: dict[WorkloadState, frozenset[WorkloadState]] = {
    S.QUEUED: frozenset({S.SCHEDULED, S.CANCELLED, S.FAILED}),
    S.SCHEDULED: frozenset({S.RUNNING, S.QUEUED, S.CANCELLED, S.FAILED}),
    S.RUNNING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED, S.QUEUED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}


def can_transition(src: WorkloadState, dst: WorkloadState) -> bool:
    return dst in ALLOWED[src]


def check_transition(workload_id: str, src: WorkloadState, dst: WorkloadState) -> None:
    """Raise WorkloadTransitionError (409) unless ``src -> dst`` is legal."""
    if not can_transition(src, dst):
        if src.terminal:
            detail = f"workload {workload_id} is already {src.value}"
        else:
            detail = f"workload {workload_id} cannot go from {src.value} to {dst.value}"
        raise WorkloadTransitionError(detail, workload_id=workload_id, state=src.value,
                                      target=dst.value)
