"""The Ray actor of one facility: owns its ASICs and aggregates its GPUs' power against the cap."""

from __future__ import annotations

import threading
from typing import Any

import ray

from actors.handles import FleetClient
from hcp.config import Settings
from hcp.fleet.facility import Facility, FacilityReport
from hcp.fleet.modes import SwitchRequest
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import FacilitySpec
from hcp.fleet.status import GpuStatus, SwitchResult
from hcp.logging_setup import configure_for
from hcp.observability.fleet import record_facility
from hcp.observability.recorders import start_recorders
from hcp.store import engine_for


@ray.remote
class FacilityActor:
    def __init__(self, spec: FacilitySpec, settings: Settings, gpus: dict[str, Any]) -> None:
        configure_for(settings)
        self._facility = Facility(spec, FleetRepository(engine_for(settings.resolved_database_url)))
        self._facility.load()
        self._fleet = FleetClient(dict(gpus))  # device id -> GpuActor handle
        self._last: dict[str, GpuStatus] = {}
        self._lock = threading.Lock()  # the metrics thread and the callers share ``_last``
        from actors.metrics_sink import METRICS_SECONDS, RaySink

        # The facility's power against its cap for Prometheus (and FacilityOverPowerCap),
        # whether or not anyone asks for a report.
        sink = RaySink()
        self._metrics_stop = start_recorders([lambda: record_facility(sink, self.report())],
                                             METRICS_SECONDS)

    def report(self) -> FacilityReport:
        # A GPU that is restarting shows with its last known state, flagged unavailable: one
        # GPU's crash never makes the facility (or the platform showing it) fail.
        with self._lock:
            statuses = self._fleet.statuses(last=self._last, facility=self._facility.spec.name)
            self._last.update({k: v for k, v in statuses.items() if v.up})
            return self._facility.report(list(statuses.values()))

    def switch(self, request: SwitchRequest) -> SwitchResult:
        """Switch one of this facility's ASICs (a power command; see ``Facility.set_asic_mode``)."""
        return self._facility.set_asic_mode(request.device_id, request.target, request.reason,
                                            request.correlation_id)

    def gpu_ids(self) -> list[str]:
        return list(self._fleet.gpus)

    def asic_ids(self) -> list[str]:
        return [a.id for a in self._facility.spec.asics]
