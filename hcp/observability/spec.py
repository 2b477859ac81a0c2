"""What a metric is, as data: name, type, help, label names, buckets, closed label values.

The catalogue (``hcp.observability.catalogue``) is a tuple of these; every sink checks each
recording against it, so a misspelled metric or label is a programming error that fails at
the first call (and in the unit tests over the call sites), never a silently new series.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Kind(str, Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class MetricUsageError(ValueError):
    """A recording that does not match the catalogue: a bug in the caller, not a refusal."""


METRIC_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Labels Prometheus or Ray's metrics agent set themselves; a metric must not declare them.
RESERVED_LABELS = frozenset({
    "le", "quantile", "job", "instance", "Component", "NodeAddress", "SessionName", "Version",
    "WorkerId", "JobId",
})


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    # Labels whose values form a closed set; recording any other value is a usage error.
    # Labels not named here are bounded by the platform's own size (devices, routes, ...).
    values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    area: str = ""

    def series_names(self) -> tuple[str, ...]:
        """The sample names Prometheus stores for this metric."""
        if self.kind is Kind.HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)

    def check(self, kind: Kind, labels: Mapping[str, Any]) -> dict[str, str]:
        """The labels as strings, or ``MetricUsageError`` if this recording is not allowed."""
        if kind is not self.kind:
            raise MetricUsageError(f"{self.name} is a {self.kind.value}, not a {kind.value}")
        if len(labels) != len(self.labels) or any(k not in labels for k in self.labels):
            raise MetricUsageError(
                f"{self.name} takes labels {sorted(self.labels)}, got {sorted(labels)}")
        out: dict[str, str] = {}
        for key in self.labels:
            value = labels[key]
            if isinstance(value, Enum):
                value = value.value
            if not isinstance(value, str):
                raise MetricUsageError(f"{self.name}: label {key} must be a str, got {value!r}")
            allowed = self.values.get(key)
            if allowed is not None and value not in allowed:
                raise MetricUsageError(
                    f"{self.name}: label {key}={value!r} is not one of {sorted(allowed)}")
            out[key] = value
        return out


def counter(name: str, help: str, labels: tuple[str, ...] = (), **values: frozenset[str]) -> MetricSpec:
    return MetricSpec(name, Kind.COUNTER, help, labels, values=values)


def gauge(name: str, help: str, labels: tuple[str, ...] = (), **values: frozenset[str]) -> MetricSpec:
    return MetricSpec(name, Kind.GAUGE, help, labels, values=values)


def histogram(name: str, help: str, labels: tuple[str, ...], buckets: tuple[float, ...],
              **values: frozenset[str]) -> MetricSpec:
    return MetricSpec(name, Kind.HISTOGRAM, help, labels, buckets, values=values)
