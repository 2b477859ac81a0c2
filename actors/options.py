"""Every actor's resources, names and restart policy, in one place."""

from __future__ import annotations

from typing import Any

from hcp.config import Settings
from hcp.fleet.spec import FacilitySpec, GpuSpec


def gpu_actor_name(device_id: str) -> str:
    return f"gpu:{device_id}"


def facility_actor_name(facility: str) -> str:
    return f"facility:{facility}"


def gpu_actor_options(spec: GpuSpec, settings: Settings) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "name": gpu_actor_name(spec.id),
        "namespace": settings.ray_namespace,
        # Restarted in its last committed mode (see hcp.fleet.device.GpuDevice.start).
        "max_restarts": settings.actor_max_restarts,
        # Mutating calls are not replayed blindly after a crash: the caller sees the failure
        # and the committed generation says what happened.
        "max_task_retries": 0,
        # switch, status and embed run concurrently with each other; the worker serializes switches.
        "max_concurrency": 8,
    }
    if spec.device_index is not None:
        opts.update(num_gpus=1, num_cpus=1)
    else:
        opts.update(num_gpus=0, num_cpus=settings.local_gpu_cpus)
    return opts


def facility_actor_options(spec: FacilitySpec, settings: Settings) -> dict[str, Any]:
    return {
        "name": facility_actor_name(spec.name),
        "namespace": settings.ray_namespace,
        "max_restarts": settings.actor_max_restarts,
        "max_task_retries": 0,
        "max_concurrency": 4,
        "num_cpus": 0,
    }
