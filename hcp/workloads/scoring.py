"""Which GPU a workload should run on: requirement fit, temperature, utilization, locality.

Pure functions over snapshots, so the choice is testable without Ray or a fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from hcp.fleet.modes import GpuMode
from hcp.workloads.metering import canonical_gpu_model
from hcp.workloads.types import Workload

# Weights of the 0..100 score; fit dominates, then thermal headroom, then load, then locality.
W_FIT, W_TEMP, W_UTIL, W_LOCAL = 40.0, 25.0, 20.0, 15.0
COOL_C, HOT_C = 30.0, 90.0


@dataclass(frozen=True)
class GpuView:
    """What the router knows about one GPU at planning time."""

    device_id: str
    model: str
    memory_gb: float
    facility: str
    mode: GpuMode
    temperature_c: float | None = None  # None: the GPU reported none (unknown, not cool)
    utilization: float = 0.0
    busy_with: str | None = None  # id of the workload the router placed on it
    held_by: str | None = None  # the GPU's own hold (hcp.fleet.holds key): a job or a workload

    def __post_init__(self) -> None:
        if not isinstance(self.mode, GpuMode):  # snapshots from the edge may spell it as text
            object.__setattr__(self, "mode", GpuMode.parse(self.mode))


class Action(str, Enum):
    USE = "use"  # already in INFERENCE
    ACTIVATE = "activate"  # IDLE -> INFERENCE
    PREEMPT_MINING = "preempt_mining"  # MINING -> INFERENCE for a real-time workload
    PREEMPT_WORKLOAD = "preempt_workload"  # requeue an interruptible lower-priority workload


@dataclass(frozen=True)
class Placement:
    workload_id: str
    device_id: str
    action: Action
    score: float
    victim_id: str | None = None


def fits(req: dict[str, Any], gpu: GpuView) -> bool:
    """Hard requirements: GPU model (any spelling) and minimum memory."""
    model = req.get("gpu_model")
    if model and canonical_gpu_model(model) != canonical_gpu_model(gpu.model):
        return False
    mem = req.get("min_memory_gb")
    return not (mem and gpu.memory_gb < mem)


def score(req: dict[str, Any], gpu: GpuView) -> float:
    """0..100, higher is better; only meaningful for a GPU that ``fits``."""
    mem = req.get("min_memory_gb")
    # Tightest fit wins: a 24 GB job should not take the 80 GB card another job may need.
    fit = W_FIT * (min(1.0, mem / gpu.memory_gb) if mem else 0.75)
    if gpu.temperature_c is None:
        heat = 0.5  # unknown: neither preferred as cool nor avoided as hot
    else:
        heat = min(1.0, max(0.0, (gpu.temperature_c - COOL_C) / (HOT_C - COOL_C)))
    util = min(1.0, max(0.0, gpu.utilization))
    want = req.get("facility")
    local = W_LOCAL if want is None or want == gpu.facility else 0.0
    if want is None:
        local /= 2  # no preference: neutral, so a preferred match still outranks it elsewhere
    return round(fit + W_TEMP * (1.0 - heat) + W_UTIL * (1.0 - util) + local, 3)


def why_waiting(workload: Workload, gpus: list[GpuView]) -> str:
    """Why a queued workload was not placed in this pass, in words a customer can act on."""
    req = workload.requirements
    fitting = [g for g in gpus if fits(req, g)]
    if not fitting:
        return "waiting: no GPU of the running fleet meets its requirements now"
    free = [g for g in fitting if g.busy_with is None]
    if not free:
        return f"waiting: every GPU that meets its requirements ({len(fitting)}) is busy"
    modes = {g.mode for g in free}
    if modes <= {GpuMode.CURTAILED}:
        return "waiting: the GPUs that meet its requirements are curtailed (facility power cap)"
    if GpuMode.MINING in modes and not workload.real_time:
        return ("waiting: the GPUs that meet its requirements are mining; only real-time work "
                "(priority >= 8) preempts mining")
    return "waiting for a GPU that meets its requirements"


def choose(workload: Workload, gpus: list[GpuView], running: dict[str, Workload]) -> Placement | None:
    """Where ``workload`` runs now, or None to keep it queued.

    Order: a free GPU in INFERENCE or IDLE (INFERENCE first, no switch needed); then, for a
    real-time workload only, a MINING GPU switched to inference; then an interruptible,
    lower-priority running workload that is requeued. CURTAILED GPUs are never used and a
    non-interruptible workload is never displaced.
    """
    req = workload.requirements
    fitting = [g for g in gpus if fits(req, g)]

    def best(cands: list[GpuView], action: Action) -> Placement | None:
        if not cands:
            return None
        g = max(cands, key=lambda c: (score(req, c), c.device_id))
        return Placement(workload.id, g.device_id, action, score(req, g))

    free = [g for g in fitting if g.busy_with is None]
    found = best([g for g in free if g.mode is GpuMode.INFERENCE], Action.USE) or best(
        [g for g in free if g.mode is GpuMode.IDLE], Action.ACTIVATE)
    if found or not workload.real_time:
        return found
    found = best([g for g in free if g.mode is GpuMode.MINING], Action.PREEMPT_MINING)
    if found:
        return found
    victims = []
    for g in fitting:
        v = running.get(g.busy_with) if g.busy_with else None
        if v is not None and v.interruptible and v.priority < workload.priority \
                and g.mode is not GpuMode.CURTAILED:
            victims.append((v.priority, -score(req, g), g.device_id, v.id))
    if not victims:
        return None
    _, neg, device_id, victim = min(victims)
    return Placement(workload.id, device_id, Action.PREEMPT_WORKLOAD, -neg, victim_id=victim)
