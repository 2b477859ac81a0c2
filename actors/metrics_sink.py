"""The metrics sink over Ray's metrics agent: every process of the platform records through it.

Each catalogue metric becomes a ``ray.util.metrics`` object the first time this process uses
it (Ray metrics belong to the process that records them). Ray exports them as ``ray_<name>``
with its own labels (WorkerId, NodeAddress ...); ``ops/prometheus/prometheus.yml`` strips the
prefix at scrape time.

Ray's agent drops a gauge that was not set again within two export intervals (Ray 2.60: a
gauge set once is gone 20 s later), so this sink sets every gauge it holds again, from a
daemon thread, twice per export interval.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hcp.observability.sink import CheckedSink
from hcp.observability.spec import Kind, MetricSpec

if TYPE_CHECKING:
    from hcp.config import Settings

DEFAULT_REFRESH_S = 4.0


def _refresh_interval() -> float:
    """Half of Ray's export interval (floored at 1 s by Ray itself)."""
    try:
        import ray

        return max(1000, int(ray._config.metrics_report_interval_ms())) / 2000
    except (ImportError, AttributeError):  # a Ray without this private config: a safe default
        return DEFAULT_REFRESH_S


# How often an actor records what it reads from its own state: Prometheus' scrape interval.
METRICS_SECONDS = 15.0


class RaySink(CheckedSink):
    def __init__(self, refresh_seconds: float | None = None) -> None:
        self._metrics: dict[str, Any] = {}
        # Every gauge's last value, per process: Ray gauges only have set(), and they must be
        # set again before Ray's agent forgets them.
        self._gauge_values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()
        self._refresh_seconds = refresh_seconds
        self._refresher: threading.Thread | None = None
        self._stopped = threading.Event()

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
            if value == 0:
                # A counter exported at 0 before its first event: Prometheus' increase() then
                # sees the first one (a series born at 1 looks like no increase). Ray's inc()
                # refuses 0; its OpenTelemetry counter takes it.
                self._metric(s)._record(0, tags=dict(labels))
                return
            self._metric(s).inc(value, tags=dict(labels))
            return
        key = (s.name, tuple(sorted(labels.items())))
        with self._lock:
            total = self._gauge_values.get(key, 0.0) + value
            self._gauge_values[key] = total
        self._metric(s).set(total, tags=dict(labels))
        self._ensure_refresher()

    def _set(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        with self._lock:
            self._gauge_values[(s.name, tuple(sorted(labels.items())))] = value
        self._metric(s).set(value, tags=dict(labels))
        self._ensure_refresher()

    def _ensure_refresher(self) -> None:
        if self._refresher is None:
            with self._lock:
                if self._refresher is None:
                    period = self._refresh_seconds or _refresh_interval()
                    self._refresher = threading.Thread(target=self._refresh, args=(period,),
                                                       name="hcp-gauge-refresh", daemon=True)
                    self._refresher.start()

    def _refresh(self, period: float) -> None:
        while not self._stopped.wait(period):
            with self._lock:
                values = list(self._gauge_values.items())
            for (name, labels), value in values:
                self._metrics[name].set(value, tags=dict(labels))

    def close(self) -> None:
        """Stop setting the gauges again (they then age out of Ray's agent)."""
        self._stopped.set()

    def _observe(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        self._metric(s).observe(value, tags=dict(labels))


def configure_breakers(settings: Settings) -> None:
    """This process's dependency breakers from ``HCP_OPS__BREAKERS__*``, their state and
    calls exported through Ray's metrics agent (call once where an actor or replica starts)."""
    from hcp.resilience.registry import configure_process_breakers

    configure_process_breakers(settings.ops.breakers, RaySink())
