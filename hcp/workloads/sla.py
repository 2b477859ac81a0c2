"""Service-level terms of a workload, enforced while it waits in the queue.

``sla.max_latency_ms`` bounds the wait from admission to the first start; ``sla.deadline``
is when the work must be finished, so it must start by the deadline less the GPU time it
still needs. A workload that can no longer meet its terms fails at once with the reason,
instead of running late: the client learns it now and can go elsewhere. A deadline that is
already out of reach at admission is refused (422).
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta

from hcp.workloads.types import Workload, WorkloadState


def deadline_of(w: Workload) -> datetime | None:
    raw = w.sla.get("deadline")
    if raw is None:
        return None
    return raw if isinstance(raw, datetime) else datetime.fromisoformat(raw)


def start_by(w: Workload) -> tuple[datetime, str] | None:
    """The latest start that keeps the SLA, and which term sets it (None: no terms)."""
    limits: list[tuple[datetime, str]] = []
    latency = w.sla.get("max_latency_ms")
    if latency is not None and w.started_at is None:  # only the first start is bounded
        limits.append((w.created_at + timedelta(milliseconds=int(latency)),
                       f"not started within the SLA's max latency of {int(latency)} ms"))
    deadline = deadline_of(w)
    if deadline is not None:
        needed_ms = max(0, w.duration_seconds * 1000 - w.gpu_ms)
        why = (f"cannot finish by the SLA deadline {deadline.isoformat()} "
               f"(needs {needed_ms / 1000:g} s of GPU time)")
        limits.append((deadline - timedelta(milliseconds=needed_ms), why))
    return min(limits) if limits else None


class SlaWatch:
    """Queued workloads with terms, by the time they must start (a heap; stale entries are
    skipped when they come due)."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, str]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def watch(self, w: Workload) -> None:
        limit = start_by(w)
        if limit is not None:
            heapq.heappush(self._heap, (limit[0], w.seq, w.id))

    def due(self, now: datetime, active: dict[str, Workload]) -> list[tuple[Workload, str]]:
        """Queued workloads whose start-by time has passed, with the reason."""
        out: list[tuple[Workload, str]] = []
        seen: set[str] = set()  # a workload may be in the heap more than once
        while self._heap and self._heap[0][0] <= now:
            _, _, wid = heapq.heappop(self._heap)
            w = active.get(wid)
            if w is None or w.state is not WorkloadState.QUEUED or wid in seen:
                continue
            seen.add(wid)
            limit = start_by(w)
            if limit is None:
                continue
            if limit[0] <= now:
                out.append((w, limit[1]))
            else:  # its terms changed (it ran meanwhile): watch the new time
                heapq.heappush(self._heap, (limit[0], w.seq, w.id))
        return out
