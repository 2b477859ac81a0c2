"""The metrics sink over Ray's metrics agent: every process of the platform records through it.

Each catalogue metric becomes a ``ray.util.metrics`` object the first time this process uses
it (Ray metrics belong to the process that records them). Ray exports them as ``ray_<name>``
with its own labels (WorkerId, NodeAddress ...); ``ops/prometheus/prometheus.yml`` strips the
prefix at scrape time.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from hcp.observability.sink import CheckedSink
from hcp.observability.spec import Kind, MetricSpec


class RaySink(CheckedSink):
    def __init__(self) -> None:
        self._metrics: dict[str, Any] = {}
        # Ray gauges only have set(): gauges moved by inc() keep their value here, per process.
        self._gauge_values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()

    def _metric(self, s: MetricSpec) -> Any:
        m = self._metrics.get(s.name)
        if m is None:
            from ray.util import metrics

            with self._lock:
                m = self._metrics.get(s.name)
                if m is None:
                    if s.kind is Kind.COUNTER:
                        m = metrics.Counter(s.name, s.help, tag_keys=s.labels)
                    elif s.kind is Kind.GAUGE:
                        m = metrics.Gauge(s.name, s.help, tag_keys=s.labels)
                    else:
                        m = metrics.Histogram(s.name, s.help, boundaries=list(s.buckets),
                                              tag_keys=s.labels)
                    self._metrics[s.name] = m
        return m

    def _inc(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        if s.kind is Kind.COUNTER:
            self._metric(s).inc(value, tags=dict(labels))
            return
        key = (s.name, tuple(sorted(labels.items())))
        with self._lock:
            total = self._gauge_values.get(key, 0.0) + value
            self._gauge_values[key] = total
        self._metric(s).set(total, tags=dict(labels))

    def _set(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        if s.kind is Kind.GAUGE:
            with self._lock:
                self._gauge_values[(s.name, tuple(sorted(labels.items())))] = value
        self._metric(s).set(value, tags=dict(labels))

    def _observe(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        self._metric(s).observe(value, tags=dict(labels))
