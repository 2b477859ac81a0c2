"""Builds a GPU worker for one device of the fleet spec from the settings."""

from __future__ import annotations

import logging
import time

from hcp.config import Settings
from hcp.fleet.spec import GpuSpec
from hcp.fleet.telemetry import open_telemetry
from hcp.fleet.worker import GpuWorker
from hcp.inference import create_model
from hcp.mining import (
    MiningContext,
    cuda_available,
    load_sample_headers,
    local_job_template,
    make_backend,
)

log = logging.getLogger(__name__)


def build_gpu_worker(spec: GpuSpec, settings: Settings, *, cuda_ordinal: int | None = None,
                     nvml_index: int | None = None) -> GpuWorker:
    """A worker with both contexts on the device's CUDA GPU, or on the CPU for a simulated GPU.

    ``cuda_ordinal`` is the device as this process sees it (Ray remaps CUDA_VISIBLE_DEVICES);
    ``nvml_index`` is the physical index NVML uses for telemetry.
    """
    on_cuda = cuda_ordinal is not None and cuda_available()
    if on_cuda:
        backend = make_backend("torch-cuda")
        device = f"cuda:{cuda_ordinal}"
        batch = settings.fleet.mining_batch_nonces_gpu
        cpu_share = 1.0
    else:
        backend = make_backend(settings.fleet.cpu_mining_backend)
        device = settings.fleet.inference_device or "cpu"
        batch = settings.fleet.mining_batch_nonces
        cpu_share = settings.fleet.mining_cpu_share
    tip = load_sample_headers()[-1]
    job_id = f"{spec.id}-local"
    template = local_job_template(tip, job_id=job_id, now_unix=int(time.time()))
    mining = MiningContext(backend, template, job_id, settings.fleet.share_difficulty, batch)
    inference = create_model(settings.fleet.inference_model, device=device)
    telemetry = open_telemetry(
        nvml_index if on_cuda else None, model=spec.model, tdp_w=spec.power_w, idle_w=spec.idle_w,
        memory_total_mb=spec.memory_gb * 1024, resident_mb=0.0,
    )
    return GpuWorker(spec.id, mining, inference, telemetry, mining_cpu_share=cpu_share)
