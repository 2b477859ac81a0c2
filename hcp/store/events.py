"""The kinds of entries in the append-only event log (the ``events`` table)."""

from __future__ import annotations

from enum import Enum


class EventKind(str, Enum):
    MODE_CHANGE = "mode_change"  # a committed device mode change (GPU switch, ASIC command)
    ACTOR_RECOVERED = "actor_recovered"  # a device actor restarted in its committed mode
    WORKLOAD = "workload"  # a workload changed state
    GPU_RELEASED = "gpu_released"  # a workload that preempted mining let its GPU go
    INFERENCE_PREEMPTION = "inference_preemption"  # online inference switched a GPU
    OPTIMIZER_DECISION = "optimizer_decision"  # an optimizer decision's outcome
    PREEMPTION = "preemption"  # a held GPU's job or workload stopped for a facility power cap
