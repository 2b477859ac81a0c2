"""A job's container, decided as a value: limits from the offer, the renter's network choice,
GPU access (a device request, or a labelled simulated GPU), and the labels that tie the
container to its job, provider and agent (how ``reconcile`` finds it after a crash)."""

from __future__ import annotations

from dataclasses import dataclass

from hcp.agent.messages import (
    ContainerSpec,
    EngineCaps,
    InstanceSpec,
    JobInfo,
    OfferLimits,
    PulledImage,
    Slot,
)
from hcp.agent.settings import AgentSettings
from hcp.errors import ConfigError

LABEL_MANAGED = "hcp.managed_by"
LABEL_AGENT = "hcp.agent"
LABEL_JOB = "hcp.job_id"
LABEL_PROVIDER = "hcp.provider"
LABEL_GPU = "hcp.gpu_id"
LABEL_SIMULATED = "hcp.simulated_gpu"
MANAGED_BY = "hcp-agent"
SIMULATED_ENV = "HCP_SIMULATED_GPU"
GIB = 1 << 30


@dataclass(frozen=True)
class Identity:
    agent_id: str
    provider: str


def container_name(job_id: str) -> str:
    # One name per job: the Engine refuses a second container for the same job.
    return f"hcp-job-{job_id}"


def uses_real_gpu(slot: Slot, caps: EngineCaps, settings: AgentSettings) -> bool:
    if settings.gpu == "simulated":
        return False
    real = caps.nvidia and slot.device_index is not None
    if settings.gpu == "nvidia" and not real:
        raise ConfigError(f"GPU {slot.gpu_id}: HCP_AGENT__GPU=nvidia but the NVIDIA runtime "
                          "or the device index is missing")
    return real


def build_spec(job: JobInfo, offer: OfferLimits, instance: InstanceSpec, slot: Slot,
               image: PulledImage, who: Identity, caps: EngineCaps,
               settings: AgentSettings) -> ContainerSpec:
    real_gpu = uses_real_gpu(slot, caps, settings)
    storage = offer.storage_gb * GIB
    memory = offer.memory_gb * GIB
    # The root is read-only; the writable places are tmpfs mounts (the scratch path and
    # every volume the image declares, so no anonymous volume escapes the disk limit).
    # tmpfs pages count against the memory cgroup, so writes are bounded by both limits.
    tmpfs_opts = f"rw,nosuid,nodev,size={storage}"
    tmpfs = {settings.tmpfs_path: tmpfs_opts}
    for path in image.volumes:
        tmpfs.setdefault(path, tmpfs_opts)
    env = {k: v for k, v in instance.env.items() if not k.startswith("HCP_")}
    env.update({"HCP_JOB_ID": job.id, "HCP_GPU_ID": slot.gpu_id,
                "HCP_GPU_MODEL": slot.gpu_model or offer.gpu_model})
    if not real_gpu:
        env[SIMULATED_ENV] = "1"
    labels = {LABEL_MANAGED: MANAGED_BY, LABEL_AGENT: who.agent_id, LABEL_JOB: job.id,
              LABEL_PROVIDER: who.provider, LABEL_GPU: slot.gpu_id,
              LABEL_SIMULATED: "0" if real_gpu else "1"}
    return ContainerSpec(
        name=container_name(job.id), image=image.image_id, command=instance.command, env=env,
        labels=labels, nano_cpus=min(offer.vcpu, caps.cpus or offer.vcpu) * 1_000_000_000,
        mem_bytes=memory,
        pids_limit=settings.pids_limit, network=instance.network, tmpfs=tmpfs,
        storage_bytes=storage if caps.disk_quota else None,
        gpu_device=str(slot.device_index) if real_gpu else None, simulated_gpu=not real_gpu)
