"""The notary's metrics recorder (``hcp.notary.metrics.NotaryMetrics``) over a MetricsSink.

The notary records stages, refusals and verdicts through this wherever it runs — standalone
(``PrometheusSink``) or mounted in the platform (``RaySink``) — under the catalogue's names,
the same the notary's own recorders use.
"""

from __future__ import annotations

from hcp.observability.sink import MetricsSink


class SinkNotaryMetrics:
    def __init__(self, sink: MetricsSink) -> None:
        self.sink = sink

    def stage(self, stage: str, seconds: float) -> None:
        self.sink.observe("hcp_notary_stage_seconds", seconds, stage=stage)

    def rejected(self, reason: str) -> None:
        self.sink.inc("hcp_notary_rejections_total", reason=reason)

    def verified(self, seconds: float) -> None:
        self.sink.inc("hcp_notary_verified_total")
        self.sink.observe("hcp_notary_verification_seconds", seconds)
