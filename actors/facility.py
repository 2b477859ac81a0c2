"""The Ray actor of one facility: owns its ASICs and aggregates its GPUs' power against the cap."""

from __future__ import annotations

from typing import Any

import ray

from hcp.config import Settings
from hcp.fleet.facility import Facility
from hcp.fleet.spec import FacilitySpec
from hcp.logging_setup import configure_logging
from hcp.store import FleetRepository, connect


@ray.remote
class FacilityActor:
    def __init__(self, spec: FacilitySpec, settings: Settings, gpus: dict[str, Any]) -> None:
        configure_logging(settings.log_level)
        self._facility = Facility(spec, FleetRepository(connect(settings.resolved_database_url)))
        self._facility.load()
        self._gpus = gpus  # device id -> GpuActor handle

    def report(self) -> dict[str, Any]:
        statuses = ray.get([h.status.remote() for h in self._gpus.values()])
        out = self._facility.report(statuses).to_dict()
        out["gpus"] = statuses
        out["asics"] = {k: v.value for k, v in self._facility.asic_modes().items()}
        return out

    def set_asic_mode(self, asic_id: str, mode: str, reason: str = "") -> dict[str, Any]:
        return self._facility.set_asic_mode(asic_id, mode, reason).to_dict()

    def gpu_ids(self) -> list[str]:
        return list(self._gpus)
