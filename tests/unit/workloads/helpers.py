"""Shared helpers of the workloads unit tests: a hand-driven clock and GPU snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hcp.workloads.scoring import GpuView

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.t = start

    def now(self) -> datetime:
        return self.t

    def monotonic(self) -> float:
        return (self.t - T0).total_seconds()

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def gpu(device_id: str, mode: str = "IDLE", model: str = "H100", memory_gb: float = 80,
        facility: str = "lab", temperature_c: float = 40.0, utilization: float = 0.0,
        busy_with: str | None = None) -> GpuView:
    return GpuView(device_id=device_id, model=model, memory_gb=memory_gb, facility=facility, mode=mode,
                   temperature_c=temperature_c, utilization=utilization, busy_with=busy_with)
