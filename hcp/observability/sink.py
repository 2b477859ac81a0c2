"""Where the platform records metrics: by catalogue name and labels, through one small protocol.

``PrometheusSink`` exports with prometheus_client (standalone processes, tests: exposition
text); ``actors.metrics_sink.RaySink`` exports through Ray's metrics agent; ``NullSink``
checks every recording and keeps nothing (the default where no exporter is wanted).
All three check each call against the catalogue, so they fail alike on a bad name or label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from hcp.observability.catalogue import CATALOGUE, spec
from hcp.observability.spec import Kind, MetricSpec, MetricUsageError


class MetricsSink(Protocol):
    def inc(self, name: str, value: float = 1.0, /, **labels: Any) -> None:
        """Add to a counter (value >= 0) or a gauge (any sign). ``inc(counter, 0)`` exports
        the counter's series at 0 before its first event, so ``increase()`` sees that one."""

    def set(self, name: str, value: float, /, **labels: Any) -> None:
        """Set a gauge."""

    def observe(self, name: str, value: float, /, **labels: Any) -> None:
        """Record one observation in a histogram."""

    def set_state(self, name: str, label: str, current: Any, /, **labels: Any) -> None:
        """One-hot gauge: 1 for ``label=current``, 0 for every other value of ``label``."""


class CheckedSink:
    """The catalogue checks every sink shares; subclasses write the checked values."""

    def inc(self, name: str, value: float = 1.0, /, **labels: Any) -> None:
        s = spec(name)
        kind = Kind.GAUGE if s.kind is Kind.GAUGE else Kind.COUNTER
        checked = s.check(kind, labels)
        if s.kind is Kind.COUNTER and value < 0:
            raise MetricUsageError(f"{name}: a counter cannot go down (inc by {value})")
        if value or s.kind is Kind.COUNTER:
            self._inc(s, float(value), checked)

    def set(self, name: str, value: float, /, **labels: Any) -> None:
        s = spec(name)
        self._set(s, float(value), s.check(Kind.GAUGE, labels))

    def observe(self, name: str, value: float, /, **labels: Any) -> None:
        s = spec(name)
        self._observe(s, float(value), s.check(Kind.HISTOGRAM, labels))

    def set_state(self, name: str, label: str, current: Any, /, **labels: Any) -> None:
        s = spec(name)
        allowed = s.values.get(label)
        if allowed is None:
            raise MetricUsageError(f"{name}: {label!r} is not a closed-set label")
        current = getattr(current, "value", current)
        if current not in allowed:
            raise MetricUsageError(f"{name}: {label}={current!r} is not one of {sorted(allowed)}")
        for value in sorted(allowed):
            full = {**labels, label: value}
            self._set(s, 1.0 if value == current else 0.0, s.check(Kind.GAUGE, full))

    def _inc(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        raise NotImplementedError

    def _set(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        raise NotImplementedError

    def _observe(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        raise NotImplementedError


class NullSink(CheckedSink):
    """Checks every recording against the catalogue and keeps nothing."""

    def _inc(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        pass

    def _set(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        pass

    def _observe(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        pass


class PrometheusSink(CheckedSink):
    """Every catalogue metric in one prometheus_client registry; ``exposition()`` is /metrics."""

    def __init__(self, registry: Any | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry if registry is not None else CollectorRegistry()
        self._metrics: dict[str, Any] = {}
        for s in CATALOGUE:
            if s.kind is Kind.COUNTER:
                # prometheus_client appends _total itself.
                m: Any = Counter(s.name.removesuffix("_total"), s.help, s.labels,
                                 registry=self.registry)
            elif s.kind is Kind.GAUGE:
                m = Gauge(s.name, s.help, s.labels, registry=self.registry)
            else:
                m = Histogram(s.name, s.help, s.labels, buckets=s.buckets, registry=self.registry)
            self._metrics[s.name] = m

    def _child(self, s: MetricSpec, labels: Mapping[str, str]) -> Any:
        m = self._metrics[s.name]
        return m.labels(**labels) if s.labels else m

    def _inc(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        self._child(s, labels).inc(value)

    def _set(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        self._child(s, labels).set(value)

    def _observe(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        self._child(s, labels).observe(value)

    def value(self, sample: str, **labels: str) -> float | None:
        """One sample's current value (e.g. ``jobs_created_total``), for tests and probes."""
        return self.registry.get_sample_value(sample, labels)

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
