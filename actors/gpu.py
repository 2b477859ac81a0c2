"""The Ray actor of one GPU: a thin shell over hcp.fleet.device.GpuDevice."""

from __future__ import annotations

import logging

import ray

from hcp.config import Settings
from hcp.fleet.builder import build_gpu_worker
from hcp.fleet.device import GpuDevice
from hcp.fleet.spec import GpuSpec
from hcp.fleet.status import GpuStatus, SwitchResult
from hcp.fleet.worker import WorkerStatus
from hcp.logging_setup import configure_logging
from hcp.store import FleetRepository, engine_for

log = logging.getLogger(__name__)


class _GpuMetrics:
    """Prometheus-style gauges exported through Ray's metrics agent."""

    def __init__(self, device_id: str, facility: str) -> None:
        from ray.util.metrics import Gauge

        keys = ("device", "facility")
        self._tags = {"device": device_id, "facility": facility}
        self._gauges = {
            "hashrate_hs": Gauge("hcp_gpu_hashrate_hs", "SHA-256d hashes per second", tag_keys=keys),
            "power_w": Gauge("hcp_gpu_power_w", "GPU power draw (NVML or simulated)", tag_keys=keys),
            "temperature_c": Gauge("hcp_gpu_temperature_c", "GPU temperature", tag_keys=keys),
            "utilization": Gauge("hcp_gpu_utilization", "busy fraction of the active context", tag_keys=keys),
            "mode": Gauge("hcp_gpu_mode", "0 IDLE, 1 MINING, 2 INFERENCE, 3 CURTAILED", tag_keys=keys),
        }

    def export(self, st: WorkerStatus) -> None:
        codes = {"IDLE": 0, "MINING": 1, "INFERENCE": 2, "CURTAILED": 3}
        values = {"hashrate_hs": st.hashrate_hs, "power_w": st.telemetry.power_w,
                  "temperature_c": st.telemetry.temperature_c, "utilization": st.utilization,
                  "mode": codes[st.mode.value]}
        for k, v in values.items():
            self._gauges[k].set(float(v), tags=self._tags)


@ray.remote
class GpuActor:
    def __init__(self, spec: GpuSpec, settings: Settings) -> None:
        configure_logging(settings.log_level)
        ctx = ray.get_runtime_context()
        gpu_ids = ctx.get_accelerator_ids().get("GPU", [])
        worker = build_gpu_worker(
            spec, settings,
            cuda_ordinal=0 if gpu_ids else None,
            nvml_index=int(gpu_ids[0]) if gpu_ids else None,
        )
        self._device = GpuDevice(worker, FleetRepository(engine_for(settings.resolved_database_url)), spec.facility)
        self._device.start(restarted=ctx.was_current_actor_reconstructed)
        self._metrics = _GpuMetrics(spec.id, spec.facility)
        self._device.start_checkpointing(settings.fleet.checkpoint_seconds, on_status=self._metrics.export)

    def switch(self, target: str, reason: str = "", correlation_id: str | None = None
               ) -> SwitchResult:
        return self._device.switch(target, reason, correlation_id)

    def status(self) -> GpuStatus:
        return self._device.status()

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self._device.worker.embed(texts).tolist()

    def probe_inference_ms(self) -> float:
        return self._device.worker.probe_inference_ms()

    def checkpoint(self) -> int:
        return self._device.checkpoint()

    def pid(self) -> int:
        import os

        return os.getpid()

    def shutdown(self) -> None:
        self._device.stop()
