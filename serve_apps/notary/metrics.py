"""Notary metrics through Ray's metrics agent (scraped with the rest of the cluster)."""

from __future__ import annotations

from ray.util.metrics import Counter, Histogram

from hcp.notary.metrics import DURATION_BUCKETS


class RayNotaryMetrics:
    def __init__(self) -> None:
        self._stage = Histogram("hcp_notary_stage_seconds", "Time spent per pipeline stage",
                                boundaries=list(DURATION_BUCKETS), tag_keys=("stage",))
        self._rejected = Counter("hcp_notary_rejections_total", "Refused claims by reason",
                                 tag_keys=("reason",))
        self._verified = Counter("hcp_notary_verified_total", "Verified claims")
        self._duration = Histogram("hcp_notary_verification_seconds",
                                   "Submission-to-verdict time of verified claims",
                                   boundaries=list(DURATION_BUCKETS))

    def stage(self, stage: str, seconds: float) -> None:
        self._stage.observe(seconds, tags={"stage": stage})

    def rejected(self, reason: str) -> None:
        self._rejected.inc(tags={"reason": reason})

    def verified(self, seconds: float) -> None:
        self._verified.inc()
        self._duration.observe(seconds)
