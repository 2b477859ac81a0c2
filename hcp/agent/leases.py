"""``GpuLease`` for a host without a fleet actor (the standalone ``hcp agent`` daemon): the
agent itself is the only user of its GPUs, so the lease is a record in memory. After a
restart ``reconcile`` takes the leases of the jobs still running again.

The operator's fleet uses the GPU actor's RENTED mode instead (the lead's actor shell).
"""

from __future__ import annotations

import threading

from hcp.errors import GpuBusyError


class LocalGpuLease:
    def __init__(self) -> None:
        self._holders: dict[str, str] = {}
        self._lock = threading.Lock()

    def enter_rented(self, gpu_id: str, job_id: str) -> None:
        with self._lock:
            held = self._holders.get(gpu_id)
            if held is not None and held != job_id:
                raise GpuBusyError(f"GPU {gpu_id} is rented to job {held}", gpu_id=gpu_id)
            self._holders[gpu_id] = job_id

    def leave_rented(self, gpu_id: str, job_id: str) -> None:
        with self._lock:
            if self._holders.get(gpu_id) == job_id:
                del self._holders[gpu_id]

    def holder(self, gpu_id: str) -> str | None:
        with self._lock:
            return self._holders.get(gpu_id)
