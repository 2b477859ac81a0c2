"""Metrics of the notary behind an injected recorder (the core never imports Ray).

``PrometheusNotaryMetrics`` exports with prometheus_client (standalone app's ``/metrics``);
mounted in the platform, ``hcp.observability.notary.SinkNotaryMetrics`` records through the
API replica's sink (Ray's metrics agent).
"""

from __future__ import annotations

from typing import Any, Protocol

STAGES = ("rate_limit", "parse", "signature", "quota", "task", "replay", "integrity", "extract",
          "sandbox", "ledger")
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class NotaryMetrics(Protocol):
    def stage(self, stage: str, seconds: float) -> None: ...

    def rejected(self, reason: str) -> None: ...

    def verified(self, seconds: float) -> None: ...


class NullNotaryMetrics:
    def stage(self, stage: str, seconds: float) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass

    def verified(self, seconds: float) -> None:
        pass


class PrometheusNotaryMetrics:
    def __init__(self, registry: Any | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = registry if registry is not None else CollectorRegistry()
        self._stage = Histogram("hcp_notary_stage_seconds", "Time spent per pipeline stage",
                                ["stage"], registry=self.registry, buckets=DURATION_BUCKETS)
        self._rejected = Counter("hcp_notary_rejections_total", "Refused claims by reason",
                                 ["reason"], registry=self.registry)
        self._verified = Counter("hcp_notary_verified_total", "Verified claims",
                                 registry=self.registry)
        self._duration = Histogram("hcp_notary_verification_seconds",
                                   "Submission-to-verdict time of verified claims",
                                   registry=self.registry, buckets=DURATION_BUCKETS)

    def stage(self, stage: str, seconds: float) -> None:
        self._stage.labels(stage=stage).observe(seconds)

    def rejected(self, reason: str) -> None:
        self._rejected.labels(reason=reason).inc()

    def verified(self, seconds: float) -> None:
        self._verified.inc()
        self._duration.observe(seconds)

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
