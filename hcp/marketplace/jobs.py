"""The rental job's lifecycle (the seed's state machine) and dispute outcomes."""

from __future__ import annotations

import enum

from hcp.errors import JobTransitionError


class JobStatus(str, enum.Enum):
    CREATED = "CREATED"      # tokens locked in escrow
    ACCEPTED = "ACCEPTED"
    RUNNING = "RUNNING"      # billing clock started
    COMPLETED = "COMPLETED"  # payment released / settled, reputation updated
    DISPUTED = "DISPUTED"
    RESOLVED = "RESOLVED"    # oracle decided; passes straight on to COMPLETED
    CANCELLED = "CANCELLED"  # before start: everything refunded


TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.CREATED: frozenset({JobStatus.ACCEPTED, JobStatus.CANCELLED}),
    # The seed cancels only from CREATED; the task asks "cancel before start refunds all",
    # so an accepted-but-not-started job may be cancelled as well.
    JobStatus.ACCEPTED: frozenset({JobStatus.RUNNING, JobStatus.DISPUTED, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset({JobStatus.COMPLETED, JobStatus.DISPUTED}),
    JobStatus.DISPUTED: frozenset({JobStatus.RESOLVED}),
    JobStatus.RESOLVED: frozenset({JobStatus.COMPLETED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}

TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def check_transition(current: JobStatus, target: JobStatus, job_id: str) -> None:
    if target not in TRANSITIONS[current]:
        raise JobTransitionError(
            f"job {job_id} cannot go from {current.value} to {target.value}",
            job_id=job_id, status=current.value, requested=target.value,
            allowed=sorted(s.value for s in TRANSITIONS[current]),
        )


class DisputeOutcome(str, enum.Enum):
    PROVIDER_FAULT = "provider_fault"  # everything locked back to the renter, provider penalised
    USER_FAULT = "user_fault"          # the provider is paid what is locked (98/2)
    INCONCLUSIVE = "inconclusive"      # 50/50 of what is locked

    @property
    def provider_bps(self) -> int:
        return {DisputeOutcome.PROVIDER_FAULT: 0, DisputeOutcome.USER_FAULT: 10_000,
                DisputeOutcome.INCONCLUSIVE: 5_000}[self]
