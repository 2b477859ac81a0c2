"""The Ray actor of one GPU: a thin shell over hcp.fleet.device.GpuDevice."""

from __future__ import annotations

import logging
from typing import Any

import ray

from hcp.config import Settings
from hcp.fleet.builder import build_gpu_worker
from hcp.fleet.device import GpuDevice
from hcp.fleet.spec import GpuSpec
from hcp.logging_setup import configure_logging
from hcp.store import FleetRepository, connect

log = logging.getLogger(__name__)


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
        self._device = GpuDevice(worker, FleetRepository(connect(settings.resolved_database_url)), spec.facility)
        self._device.start(restarted=ctx.was_current_actor_reconstructed)
        self._device.start_checkpointing(settings.checkpoint_seconds)

    def switch(self, target: str, reason: str = "") -> dict[str, Any]:
        return self._device.switch(target, reason).to_dict()

    def status(self) -> dict[str, Any]:
        d = self._device.status().to_dict()
        d["generation"] = self._device.generation
        d["facility"] = self._device.facility
        return d

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
