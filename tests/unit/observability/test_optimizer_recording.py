"""The optimizer's recording helpers over its real step types."""

from __future__ import annotations

from datetime import UTC, datetime

from hcp.economics.optimizer.types import DecisionRecord, OutcomeRecord, OutcomeStatus, StepResult
from hcp.observability.optimizer import record_gpu_hour, record_step
from hcp.observability.sink import PrometheusSink

AT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def decision(i: str, kind: str, to_mode: str) -> DecisionRecord:
    return DecisionRecord(decision_id=i, tick_at=AT, issued_at=AT, device_id=f"d{i}",
                          facility="lab", kind=kind, from_mode="MINING", to_mode=to_mode,
                          reason="gain", expected_gain_usd_per_hour=1.5, issued_generation=3)


def test_a_step_records_its_decisions_outcomes_latency_and_when_it_decided() -> None:
    sink = PrometheusSink()
    step = StepResult(at=AT, tick_at=AT,
                      decisions=[decision("1", "gpu", "INFERENCE"), decision("2", "asic", "CURTAILED")],
                      outcomes=[OutcomeRecord("1", AT, OutcomeStatus.APPLIED, latency_ms=4.0),
                                OutcomeRecord("2", AT, OutcomeStatus.TIMEOUT)],
                      reconciled=[OutcomeRecord("0", AT, OutcomeStatus.RECONCILED_APPLIED)],
                      realized_profit_micro_usd=2_500_000)
    record_step(sink, step, 0.012, 5.0)
    record_step(sink, StepResult(at=datetime(2026, 12, 4, 12, 1, tzinfo=UTC), tick_at=None,
                                 skipped="no_tick"), 0.001, 5.0)
    assert sink.value("hcp_optimizer_steps_total", result="decided") == 1
    assert sink.value("hcp_optimizer_steps_total", result="no_tick") == 1
    # A step without a new tick decided nothing: the alert's clock is the deciding step's.
    assert sink.value("hcp_optimizer_last_step_timestamp_seconds") == AT.timestamp()
    assert sink.value("hcp_optimizer_decisions_total", kind="gpu", to_mode="INFERENCE") == 1
    assert sink.value("hcp_optimizer_decisions_total", kind="asic", to_mode="CURTAILED") == 1
    assert sink.value("hcp_optimizer_outcomes_total", status="APPLIED") == 1
    assert sink.value("hcp_optimizer_outcomes_total", status="TIMEOUT") == 1
    assert sink.value("hcp_optimizer_outcomes_total", status="RECONCILED_APPLIED") == 1
    assert sink.value("hcp_optimizer_apply_latency_seconds_sum", kind="gpu") == 0.004
    assert sink.value("hcp_optimizer_apply_latency_seconds_count", kind="asic") is None
    assert sink.value("hcp_optimizer_period_profit_usd") == 2.5
    assert sink.value("hcp_optimizer_interval_seconds") == 5.0
    assert sink.value("hcp_optimizer_step_duration_seconds_count") == 2


def test_a_gpu_hour_is_the_mean_over_a_models_devices_per_mode() -> None:
    sink = PrometheusSink()
    revenue = {"a": {"MINING": 1.0, "INFERENCE": 3.0}, "b": {"MINING": 2.0, "INFERENCE": 5.0},
               "s": {"MINING": 7.0}, "ghost": {"MINING": 100.0}}
    profit = {"a": {"MINING": 0.5}, "b": {"MINING": 1.5}}
    record_gpu_hour(sink, revenue, profit, {"a": "H100", "b": "H100", "s": "S21"})
    assert sink.value("hcp_gpu_hour_revenue_usd", mode="MINING", model="H100") == 1.5
    assert sink.value("hcp_gpu_hour_revenue_usd", mode="INFERENCE", model="H100") == 4.0
    assert sink.value("hcp_gpu_hour_revenue_usd", mode="MINING", model="S21") == 7.0
    assert sink.value("hcp_gpu_hour_revenue_usd", mode="INFERENCE", model="S21") is None
    assert sink.value("hcp_gpu_hour_profit_usd", mode="MINING", model="H100") == 1.0
