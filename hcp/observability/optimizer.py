"""The optimizer's metrics (the catalogue's ``economics`` area) over a MetricsSink: each step by
result and duration, the decisions it issued and their outcomes, the broadcast's latency,
the last settled period's profit and what one GPU-hour earns in each mode at the latest
prices. The optimizer actor records through Ray's metrics agent (``RaySink``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from hcp.economics.optimizer.types import StepResult
from hcp.observability.sink import MetricsSink


def record_step(sink: MetricsSink, result: StepResult, duration_s: float,
                interval_s: float) -> None:
    sink.set("hcp_optimizer_interval_seconds", interval_s)
    sink.observe("hcp_optimizer_step_duration_seconds", duration_s)
    sink.inc("hcp_optimizer_steps_total", result=result.skipped or "decided")
    if result.skipped is None:
        # A step that read a new tick decided (possibly: nothing to change). The alert "no
        # decision for 3 intervals" watches this time.
        sink.set("hcp_optimizer_last_step_timestamp_seconds", result.at.timestamp())
    kind_of = {d.decision_id: d.kind for d in result.decisions}
    for d in result.decisions:
        sink.inc("hcp_optimizer_decisions_total", kind=d.kind, to_mode=d.to_mode)
    for o in [*result.outcomes, *result.reconciled]:
        sink.inc("hcp_optimizer_outcomes_total", status=o.status.value)
        kind = kind_of.get(o.decision_id)
        if kind is not None and o.latency_ms is not None:
            sink.observe("hcp_optimizer_apply_latency_seconds", o.latency_ms / 1e3, kind=kind)
    if result.realized_profit_micro_usd is not None:
        sink.set("hcp_optimizer_period_profit_usd", result.realized_profit_micro_usd / 1e6)


def record_gpu_hour(sink: MetricsSink, revenue: Mapping[str, Mapping[str, float]],
                    profit: Mapping[str, Mapping[str, float]], model_of: Mapping[str, str]) -> None:
    """Expected USD per device-hour by mode and model: the mean over the devices of a model
    (a device's rate for a mode it cannot enter is absent, not zero)."""
    for name, rates in (("hcp_gpu_hour_revenue_usd", revenue), ("hcp_gpu_hour_profit_usd", profit)):
        sums: dict[tuple[str, str], list[float]] = defaultdict(list)
        for device, by_mode in rates.items():
            model = model_of.get(device)
            if model is None:
                continue
            for mode, usd in by_mode.items():
                sums[(mode, model)].append(usd)
        for (mode, model), values in sums.items():
            sink.set(name, sum(values) / len(values), mode=mode, model=model)
