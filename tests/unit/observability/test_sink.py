"""Both in-process sinks check every recording against the catalogue; PrometheusSink exports."""

from __future__ import annotations

import pytest

from hcp.fleet.modes import GpuMode
from hcp.observability.sink import NullSink, PrometheusSink
from hcp.observability.spec import MetricUsageError


@pytest.fixture(params=["prometheus", "null"])
def sink(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return PrometheusSink() if request.param == "prometheus" else NullSink()


def test_unknown_names_and_labels_are_usage_errors(sink) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MetricUsageError, match="not in the metrics catalogue"):
        sink.inc("jobs_creatd_total")
    with pytest.raises(MetricUsageError, match="takes labels"):
        sink.inc("http_requests_total", route="/x", method="GET")
    with pytest.raises(MetricUsageError, match="takes labels"):
        sink.inc("jobs_created_total", customer="alice")
    with pytest.raises(MetricUsageError, match="not one of"):
        sink.set("hcp_escrow_locked_amount", 1, backend="mongo")
    with pytest.raises(MetricUsageError, match="must be a str"):
        sink.inc("http_requests_total", route="/x", method="GET", status=200)


def test_kinds_are_checked(sink) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MetricUsageError, match="is a counter"):
        sink.set("jobs_created_total", 3)
    with pytest.raises(MetricUsageError, match="is a histogram"):
        sink.inc("hcp_optimizer_step_duration_seconds")
    with pytest.raises(MetricUsageError, match="cannot go down"):
        sink.inc("jobs_created_total", -1)
    with pytest.raises(MetricUsageError, match="not a closed-set label"):
        sink.set_state("hcp_device_power_watts", "device", "x", facility="f", kind="gpu")


def test_prometheus_sink_records_and_exports() -> None:
    sink = PrometheusSink()
    sink.inc("jobs_created_total")
    sink.inc("jobs_created_total", 2)
    sink.set("hcp_device_power_watts", 312.5, device="lab-gpu-0", facility="lab", kind="gpu")
    sink.inc("hcp_chain_transactions_pending", 3)
    sink.inc("hcp_chain_transactions_pending", -1)
    sink.observe("http_request_duration_seconds", 0.3, route="/api/v1/x", method="GET")
    sink.observe("http_request_duration_seconds", 3.0, route="/api/v1/x", method="GET")
    assert sink.value("jobs_created_total") == 3
    assert sink.value("hcp_device_power_watts", device="lab-gpu-0", facility="lab",
                      kind="gpu") == 312.5
    assert sink.value("hcp_chain_transactions_pending") == 2
    hist = {"route": "/api/v1/x", "method": "GET"}
    assert sink.value("http_request_duration_seconds_count", **hist) == 2
    assert sink.value("http_request_duration_seconds_bucket", **hist, le="0.5") == 1
    assert sink.value("http_request_duration_seconds_bucket", **hist, le="2.0") == 1
    assert sink.value("http_request_duration_seconds_bucket", **hist, le="+Inf") == 2
    text = sink.exposition().decode()
    assert "# TYPE jobs_created_total counter" in text
    assert 'hcp_device_power_watts{device="lab-gpu-0",facility="lab",kind="gpu"} 312.5' in text


def test_set_state_is_one_hot_and_takes_enums() -> None:
    sink = PrometheusSink()
    dev = {"device": "lab-gpu-0", "facility": "lab", "kind": "gpu"}
    sink.set_state("hcp_device_mode", "mode", GpuMode.MINING, **dev)
    sink.set_state("hcp_device_mode", "mode", GpuMode.INFERENCE, **dev)
    assert sink.value("hcp_device_mode", **dev, mode="INFERENCE") == 1
    assert sink.value("hcp_device_mode", **dev, mode="MINING") == 0
    assert sink.value("hcp_device_mode", **dev, mode="CURTAILED") == 0
    with pytest.raises(MetricUsageError):
        sink.set_state("hcp_device_mode", "mode", "HIBERNATING", **dev)


def test_the_notary_records_through_a_sink_under_its_own_names() -> None:
    from hcp.notary.metrics import STAGES, NotaryMetrics, PrometheusNotaryMetrics
    from hcp.observability.notary import SinkNotaryMetrics

    sink = PrometheusSink()
    recorder: NotaryMetrics = SinkNotaryMetrics(sink)
    for stage in STAGES:
        recorder.stage(stage, 0.02)
    recorder.rejected("invalid_signature")
    recorder.verified(1.5)
    assert sink.value("hcp_notary_stage_seconds_count", stage="sandbox") == 1
    assert sink.value("hcp_notary_rejections_total", reason="invalid_signature") == 1
    assert sink.value("hcp_notary_verified_total") == 1
    assert sink.value("hcp_notary_verification_seconds_sum") == 1.5
    # The notary's standalone recorder exports the same names and labels.
    own = PrometheusNotaryMetrics()
    own.stage("sandbox", 0.02)
    own.rejected("invalid_signature")
    assert own.registry.get_sample_value("hcp_notary_stage_seconds_count", {"stage": "sandbox"}) == 1
    assert own.registry.get_sample_value("hcp_notary_rejections_total",
                                         {"reason": "invalid_signature"}) == 1
