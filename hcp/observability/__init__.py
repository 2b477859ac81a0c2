"""Metrics catalogue and sinks, JSON logs with correlation ids, the Prometheus stack's files."""

from hcp.observability.catalogue import BY_NAME, CATALOGUE, spec, switch_direction
from hcp.observability.sink import CheckedSink, MetricsSink, NullSink, PrometheusSink
from hcp.observability.spec import Kind, MetricSpec, MetricUsageError

__all__ = ["BY_NAME", "CATALOGUE", "CheckedSink", "Kind", "MetricSpec", "MetricUsageError",
           "MetricsSink", "NullSink", "PrometheusSink", "spec", "switch_direction"]
