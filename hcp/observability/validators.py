"""The oracle's metrics (the catalogue's ``validators`` area) over a MetricsSink: heartbeats a
validator checked (accepted, missed, bad signature), the challenges it ran by verdict, the
penalties the quorum applied and the k-of-n rounds by whether they reached a quorum. The
validator and coordinator actors record through Ray's metrics agent (``RaySink``)."""

from __future__ import annotations

from collections.abc import Iterable

from hcp.observability.sink import MetricsSink
from hcp.oracle.audit import ChallengeResult
from hcp.oracle.escalation import Decision
from hcp.oracle.findings import Check, Outcome

_CHALLENGE = {Outcome.OK: "passed", Outcome.DATA_FRAUD: "failed",
              Outcome.BAD_SIGNATURE: "failed", Outcome.TIMEOUT: "timeout"}


def record_heartbeat(sink: MetricsSink, validator: str, result: str, n: int = 1) -> None:
    """``result``: ok (accepted), missed (one more interval without one), bad_signature."""
    sink.inc("hcp_validator_heartbeats_total", n, validator=validator, result=result)


def record_results(sink: MetricsSink, validator: str, results: Iterable[ChallengeResult]) -> None:
    """Each verdict (a void challenge, the validator's own mistake, is not counted)."""
    for r in results:
        if r.outcome is not None:
            sink.inc("hcp_validator_challenges_total", validator=validator,
                     result=_CHALLENGE[r.outcome])


def record_decisions(sink: MetricsSink, decisions: Iterable[Decision]) -> None:
    """The quorum's rounds (reached, or closed without k agreeing) and the penalties applied.
    Report passes are not rounds of the quorum book, and a repeated finding counts once."""
    for d in decisions:
        f = d.finding
        if d.duplicate or f.subject.startswith("report:"):
            continue
        sink.inc("hcp_validator_quorum_rounds_total",
                 check="challenge" if f.check is Check.POSSESSION else "heartbeat",
                 outcome="reached" if f.outcome is not None else "not_reached")
        for p in d.penalties:
            sink.inc("hcp_validator_penalties_total", reason=p.reason.value)
