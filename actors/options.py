"""Every actor's and Serve deployment's name, resources and restart policy, in one place."""

from __future__ import annotations

from enum import Enum
from typing import Any

from hcp.config import Settings
from hcp.fleet.spec import FacilitySpec, GpuSpec


class ActorName(str, Enum):
    """The platform's named actors (in ``HCP_RAY_NAMESPACE``); per-device ones take a suffix."""

    GPU = "gpu"  # gpu:<device id>
    FACILITY = "facility"  # facility:<name>
    ROUTER = "router"
    OPTIMIZER = "optimizer"
    ESCROW = "escrow-ledger"
    INDEXER = "chain-indexer"
    NOTARY_SANDBOX = "notary-sandbox"  # notary-sandbox:<index>
    AGENT = "agent"  # agent:<node>
    IMAGE_CACHE = "image-cache"  # the platform node's image cache (hcp.images.cache)
    VALIDATOR = "validator"  # validator:<validator id>
    ORACLE = "oracle-coordinator"  # counts the validators' votes

    def of(self, key: object) -> str:
        return f"{self.value}:{key}"

    @classmethod
    def split(cls, name: str) -> tuple[ActorName, str] | None:
        """(kind, key) of a per-device name like ``gpu:lab-gpu-0``; None for another name."""
        head, sep, key = name.partition(":")
        try:
            return (cls(head), key) if sep else None
        except ValueError:
            return None


def gpu_actor_name(device_id: str) -> str:
    return ActorName.GPU.of(device_id)


def facility_actor_name(facility: str) -> str:
    return ActorName.FACILITY.of(facility)


def gpu_actor_options(spec: GpuSpec, settings: Settings) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "name": gpu_actor_name(spec.id),
        "namespace": settings.ray.namespace,
        # Restarted in its last committed mode (see hcp.fleet.device.GpuDevice.start).
        "max_restarts": settings.ray.actor_max_restarts,
        # Mutating calls are not replayed blindly after a crash: the caller sees the failure
        # and the committed generation says what happened.
        "max_task_retries": 0,
        # switch, status and embed run concurrently with each other; the worker serializes switches.
        "max_concurrency": 8,
    }
    if spec.device_index is not None:
        opts.update(num_gpus=1, num_cpus=1)
    else:
        opts.update(num_gpus=0, num_cpus=settings.fleet.local_gpu_cpus)
    return opts


def facility_actor_options(spec: FacilitySpec, settings: Settings) -> dict[str, Any]:
    return {
        "name": facility_actor_name(spec.name),
        "namespace": settings.ray.namespace,
        "max_restarts": settings.ray.actor_max_restarts,
        "max_task_retries": 0,
        "max_concurrency": 4,
        "num_cpus": 0,
    }


def router_actor_name() -> str:
    return ActorName.ROUTER.value


def router_actor_options(settings: Settings) -> dict[str, Any]:
    return {
        "name": router_actor_name(),
        "namespace": settings.ray.namespace,
        # Restarted from the store (queued/scheduled/running workloads are reloaded).
        "max_restarts": settings.ray.actor_max_restarts,
        # Not replayed: a retried submit would admit the workload twice.
        "max_task_retries": 0,
        "max_concurrency": 1000,
        "num_cpus": 0,
        "get_if_exists": True,
    }


def optimizer_actor_name() -> str:
    return ActorName.OPTIMIZER.value


def optimizer_actor_options(settings: Settings) -> dict[str, Any]:
    return {
        "name": optimizer_actor_name(),
        "namespace": settings.ray.namespace,
        # Restarted by Ray after a crash; it resumes from the store and never re-sends a decision.
        "max_restarts": settings.ray.actor_max_restarts,
        "max_task_retries": 0,
        # status/recent/profitability answer while a step runs on the schedule thread.
        "max_concurrency": 4,
        "num_cpus": 0,
    }


def escrow_actor_name() -> str:
    return ActorName.ESCROW.value


def escrow_actor_options(settings: Settings) -> dict[str, Any]:
    return {
        "name": escrow_actor_name(),
        "namespace": settings.ray.namespace,
        # Restarted by Ray after a crash; all state is in the ledger (SQL or chain).
        "max_restarts": settings.ray.actor_max_restarts,
        # Safe to retry: every ledger operation is idempotent by job id / op id.
        "max_task_retries": -1,
        # One operation at a time: the books are updated in a single order.
        "max_concurrency": 1,
        "num_cpus": 0,
        "get_if_exists": True,
    }


def sweep_task_options() -> dict[str, Any]:
    # One CPU per grid point; retried on a lost worker (the task is pure and idempotent).
    return {"num_cpus": 1, "max_retries": 2}


def embed_task_options() -> dict[str, Any]:
    # One CPU per batch of texts (the model's forward pass is CPU-bound without a GPU);
    # retried on a lost worker: a batch's vectors are a pure function of its texts.
    return {"num_cpus": 1, "max_retries": 2}


def notary_runner_name(index: int) -> str:
    return ActorName.NOTARY_SANDBOX.of(index)


def notary_runner_options(index: int, settings: Settings, cpus: float = 1.0) -> dict[str, Any]:
    """One sandbox runner: a whole CPU for one verification at a time (runs are CPU-bound),
    or the share ``start_sandbox_pool`` found free on a cluster smaller than the pool."""
    return {
        "name": notary_runner_name(index),
        "namespace": settings.ray.namespace,
        "get_if_exists": True,
        "max_restarts": settings.ray.actor_max_restarts,
        # A sandbox run has no side effects outside its private temp dir: replaying it after a
        # runner crash is safe.
        "max_task_retries": 1,
        "max_concurrency": 1,
        "num_cpus": cpus,
    }


def indexer_actor_name(settings: Settings) -> str:
    return ActorName.INDEXER.value


def indexer_actor_options(settings: Settings) -> dict[str, Any]:
    """The one chain indexer: restarted on failure, resuming from the cursor in the store."""
    return {
        "name": indexer_actor_name(settings),
        "namespace": settings.ray.namespace,
        "get_if_exists": True,
        "max_restarts": settings.ray.actor_max_restarts,
        # poll/status are idempotent (unique tx hash + log index), so a retried call is harmless.
        "max_task_retries": 1,
        # status() answers while a poll is running; polls themselves are serialized inside.
        "max_concurrency": 4,
        "num_cpus": 0,
    }


def image_cache_options(settings: Settings) -> dict[str, Any]:
    """The platform node's image cache: restarted on failure (its own pins are recorded in
    the store); a period is idempotent, so a retried call is harmless."""
    return {
        "name": ActorName.IMAGE_CACHE.value,
        "namespace": settings.ray.namespace,
        "get_if_exists": True,
        "max_restarts": settings.ray.actor_max_restarts,
        "max_task_retries": 1,
        "max_concurrency": 2,  # status() answers while a period runs
        "num_cpus": 0,
    }


def agent_actor_name(agent_id: str) -> str:
    return ActorName.AGENT.of(agent_id)


def agent_actor_options(settings: Settings, agent_id: str) -> dict[str, Any]:
    """The operator's provider agent on one node: restarted on failure (it reconciles its
    containers by label against the job records, so a restart loses and pays nothing twice).
    Pinned to the node it was started from: its containers run on that node's Docker Engine."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {
        "name": agent_actor_name(agent_id),
        "namespace": settings.ray.namespace,
        "get_if_exists": True,
        "max_restarts": settings.ray.actor_max_restarts,
        # Calls are reads or idempotent by job (preempt of a job already stopped is a no-op).
        "max_task_retries": 1,
        "max_concurrency": 4,  # status() and preempt() answer while a step runs
        "num_cpus": 0,
        "scheduling_strategy": NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=False),
    }


def validator_actor_name(validator_id: str) -> str:
    return ActorName.VALIDATOR.of(validator_id)


def validator_actor_options(settings: Settings, validator_id: str) -> dict[str, Any]:
    return {
        "name": validator_actor_name(validator_id),
        "namespace": settings.ray.namespace,
        "get_if_exists": True,
        # Restarted by Ray after a crash: it resumes from the kept heartbeats; the challenges
        # it had in flight are lost with it (it casts no vote on that round).
        "max_restarts": settings.ray.actor_max_restarts,
        # Not retried: a heartbeat or an answer is the agent's to send again.
        "max_task_retries": 0,
        "num_cpus": 0,
    }


def coordinator_actor_name() -> str:
    return ActorName.ORACLE.value


def coordinator_actor_options(settings: Settings) -> dict[str, Any]:
    return {
        "name": coordinator_actor_name(),
        "namespace": settings.ray.namespace,
        "get_if_exists": True,
        # Restarted after a crash: the votes without a finding are reloaded from the store and
        # a finding already committed commits nothing, so no penalty is applied twice.
        "max_restarts": settings.ray.actor_max_restarts,
        "max_task_retries": 0,
        "max_concurrency": 4,  # warnings_for answers while a round is being started
        "num_cpus": 0,
    }


# --- Serve deployments ---------------------------------------------------------------------
# Serve's default of 5 in-flight requests per replica would queue a busy API behind itself;
# the handlers are async and wait on actors, so one replica carries many at once.
API_MAX_ONGOING = 512
API_APP_NAME = "hcp"


def api_ingress_options() -> dict[str, Any]:
    return {"name": "api", "max_ongoing_requests": API_MAX_ONGOING,
            "ray_actor_options": {"num_cpus": 0}}


def notary_deployment_options() -> dict[str, Any]:
    return {"name": "notary", "ray_actor_options": {"num_cpus": 0}}
