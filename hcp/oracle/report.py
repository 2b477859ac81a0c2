"""Hourly validation reports: what one validator measured of every provider in one period,
signed; and what k validators' reports agree on, which is what reputation is computed from.

Uptime is time vouched for by verified heartbeats: a heartbeat received at t covers
``[t, t + interval + grace)``, so an agent that keeps its 60 s cadence (with jitter) is up the
whole period and one that stops is down from the end of its last cover. Response time is the
challenges' round trip (issue to verified answer). Both are measured here, never posted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from fractions import Fraction
from typing import Any

from hcp.errors import InvalidEvidenceError, OracleSignatureError, ValidationError
from hcp.oracle.audit import ChallengeResult
from hcp.oracle.findings import Check, Finding, Observation, Outcome
from hcp.oracle.heartbeat import AcceptedHeartbeat
from hcp.oracle.settings import OracleSettings
from hcp.oracle.signing import Signer, Verifier
from hcp.oracle.wire import Fields, from_ms, signing_bytes, to_ms

DOMAIN = "report"
BPS = 10_000


@dataclass(frozen=True, slots=True)
class ProviderMeasurement:
    provider_id: str
    expected_ms: int = 0        # time in the period the provider was due to be up
    up_ms: int = 0              # of that, covered by verified heartbeats
    heartbeats: int = 0
    heartbeat_delay_ms: int = 0  # summed: arrival minus the signed sending time
    downtime_episodes: int = 0
    challenges: int = 0         # with a verdict (void ones are not counted)
    passed: int = 0
    timeouts: int = 0
    frauds: int = 0
    bad_signatures: int = 0
    response_ms_total: int = 0  # over the answered challenges
    responses: int = 0
    response_ms_max: int = 0

    @property
    def uptime_bps(self) -> int:
        if self.expected_ms <= 0:
            return BPS
        return min(BPS, self.up_ms * BPS // self.expected_ms)

    @property
    def response_ms_avg(self) -> int | None:
        return self.response_ms_total // self.responses if self.responses else None

    def response_bps(self, max_ms: int) -> int:
        """The reputation's response term: 1 − avg/max, in basis points (full without data)."""
        avg = self.response_ms_avg
        if avg is None:
            return BPS
        return BPS - min(BPS, avg * BPS // max_ms)

    @property
    def failures(self) -> int:
        return self.timeouts + self.frauds + self.bad_signatures + self.downtime_episodes

    def row(self) -> list[Any]:
        return [getattr(self, f) for f in ROW_FIELDS]

    @classmethod
    def from_row(cls, row: Any) -> ProviderMeasurement:
        if not isinstance(row, list) or len(row) != len(ROW_FIELDS) or not isinstance(row[0], str):
            raise ValidationError("a report row is [provider, 13 integers]")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in row[1:]):
            raise ValidationError("report counters are non-negative integers")
        return cls(*row)


ROW_FIELDS = tuple(f.name for f in fields(ProviderMeasurement))


@dataclass(frozen=True, slots=True)
class ValidationReport:
    validator_id: str
    period_start: datetime
    period_end: datetime
    measurements: tuple[ProviderMeasurement, ...]  # sorted by provider id

    def body(self) -> dict[str, Any]:
        return {"validator": self.validator_id, "period_start": to_ms(self.period_start),
                "period_end": to_ms(self.period_end), "columns": list(ROW_FIELDS),
                "rows": [m.row() for m in self.measurements]}

    def signing_bytes(self) -> bytes:
        return signing_bytes(DOMAIN, self.body())

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.signing_bytes()).hexdigest()

    @property
    def report_id(self) -> str:
        return "rep_" + self.digest[:32]

    @classmethod
    def from_body(cls, obj: Any) -> ValidationReport:
        f = Fields(obj, "report")
        if f.items("columns", 64) != list(ROW_FIELDS):
            raise ValidationError("report.columns are not this version's", field="columns")
        rows = tuple(ProviderMeasurement.from_row(r) for r in f.items("rows", 1_000_000))
        return cls(f.text("validator"), f.time("period_start"), f.time("period_end"), rows)


@dataclass(frozen=True, slots=True)
class SignedReport:
    report: ValidationReport
    signature: bytes

    def to_wire(self) -> dict[str, Any]:
        return {**self.report.body(), "signature": self.signature.hex()}


def sign_report(report: ValidationReport, signer: Signer) -> SignedReport:
    if signer.identity != report.validator_id:
        raise ValueError("a validator signs its own reports only")
    return SignedReport(report, signer.key.sign(report.signing_bytes()).signature)


def verify_report(signed: SignedReport, validators: Verifier) -> ValidationReport:
    r = signed.report
    if not validators.verify(r.validator_id, DOMAIN, r.body(), signed.signature):
        raise OracleSignatureError("report signature does not verify", validator=r.validator_id)
    return r


class _Acc:
    __slots__ = ("bs", "ch", "covered_until", "delay", "down", "exp_from", "fr", "hb", "ok",
                 "rt", "rt_max", "rt_n", "to", "up")

    def __init__(self, exp_from: int, covered_until: int) -> None:
        self.exp_from = exp_from
        self.covered_until = covered_until
        self.up = self.hb = self.delay = self.down = 0
        self.ch = self.ok = self.to = self.fr = self.bs = 0
        self.rt = self.rt_n = self.rt_max = 0


class ReportAccumulator:
    """One validator's measurements for one period, updated as things happen (O(1) each), so
    the hourly report is a pass over the providers, not over the hour's messages."""

    def __init__(self, validator_id: str, period_start: datetime, settings: OracleSettings) -> None:
        self.validator_id = validator_id
        self.start = to_ms(period_start)
        self.end = self.start + settings.report_period_seconds * 1000
        self.cover = (settings.heartbeat_interval_seconds + settings.heartbeat_grace_seconds) * 1000
        self._acc: dict[str, _Acc] = {}

    @property
    def period_end(self) -> datetime:
        return from_ms(self.end)

    def expect(self, provider_id: str, since: datetime,
               last_heartbeat_at: datetime | None = None) -> None:
        """Count a provider as due from ``since`` (its registration, or the period's start);
        a heartbeat received before the period still covers the start of it."""
        if provider_id in self._acc:
            return
        covered = self.start
        if last_heartbeat_at is not None:
            covered = min(self.end, max(self.start, to_ms(last_heartbeat_at) + self.cover))
        a = self._acc[provider_id] = _Acc(min(self.end, max(self.start, to_ms(since))), covered)
        a.up = max(0, covered - a.exp_from)

    def _get(self, provider_id: str, at_ms: int) -> _Acc:
        a = self._acc.get(provider_id)
        if a is None:
            at = min(self.end, max(self.start, at_ms))
            a = self._acc[provider_id] = _Acc(at, at)
        return a

    def add_heartbeat(self, accepted: AcceptedHeartbeat) -> None:
        t = to_ms(accepted.received_at)
        if t < self.start or t >= self.end:
            return
        hb = accepted.heartbeat
        a = self._acc.get(hb.provider_id)
        if a is None:
            a = self._acc[hb.provider_id] = _Acc(t, t)
        a.hb += 1
        delay = t - to_ms(hb.sent_at)
        if delay > 0:
            a.delay += delay
        lo = max(a.covered_until, t, a.exp_from)  # the part not yet vouched for
        hi = min(t + self.cover, self.end)
        if hi > lo:
            a.up += hi - lo
        a.covered_until = max(a.covered_until, hi)

    def add_result(self, result: ChallengeResult) -> None:
        if result.outcome is None:
            return
        a = self._get(result.provider_id, to_ms(result.checked_at))
        a.ch += 1
        o = result.outcome
        if o is Outcome.OK:
            a.ok += 1
        elif o is Outcome.TIMEOUT:
            a.to += 1
        elif o is Outcome.DATA_FRAUD:
            a.fr += 1
        elif o is Outcome.BAD_SIGNATURE:
            a.bs += 1
        if result.response_ms is not None and o is not Outcome.TIMEOUT:
            a.rt += result.response_ms
            a.rt_n += 1
            a.rt_max = max(a.rt_max, result.response_ms)

    def add_observation(self, obs: Observation) -> None:
        if obs.outcome is Outcome.DOWNTIME:
            self._get(obs.provider_id, to_ms(obs.observed_at)).down += 1

    def build(self) -> ValidationReport:
        rows = []
        for pid in sorted(self._acc):
            a = self._acc[pid]
            rows.append(ProviderMeasurement(
                pid, self.end - a.exp_from, min(a.up, self.end - a.exp_from), a.hb, a.delay,
                a.down, a.ch, a.ok, a.to, a.fr, a.bs, a.rt, a.rt_n, a.rt_max))
        return ValidationReport(self.validator_id, from_ms(self.start), from_ms(self.end),
                                tuple(rows))


@dataclass(frozen=True, slots=True)
class AgreedMeasurement:
    """What at least k validators' reports support for one provider and period: uptime at
    least ``uptime_bps`` (the k-th highest), response at most ``response_ms_avg`` (the k-th
    lowest), failures at least these (the k-th highest). A lone lying validator can thus move
    none of them outside what an honest one measured."""

    provider_id: str
    period_start: datetime
    period_end: datetime
    expected_seconds: int
    up_seconds: int
    uptime_bps: int
    response_ms_avg: int | None
    failures: int
    validators: tuple[str, ...]

    def response_bps(self, max_ms: int) -> int:
        if self.response_ms_avg is None:
            return BPS
        return BPS - min(BPS, self.response_ms_avg * BPS // max_ms)


def _uptime_ratio(m: ProviderMeasurement) -> Fraction:
    return Fraction(m.up_ms, m.expected_ms) if m.expected_ms > 0 else Fraction(1)


def consensus(reports: Iterable[ValidationReport], k: int) -> list[AgreedMeasurement]:
    """Per provider, the measurements k of the (verified) reports of one period support."""
    by_validator: dict[str, ValidationReport] = {}
    period: tuple[datetime, datetime] | None = None
    for r in reports:
        if period is None:
            period = (r.period_start, r.period_end)
        elif (r.period_start, r.period_end) != period:
            raise InvalidEvidenceError("reports of different periods")
        by_validator[r.validator_id] = r
    per: dict[str, list[tuple[str, ProviderMeasurement]]] = {}
    for vid, r in by_validator.items():
        for m in r.measurements:
            per.setdefault(m.provider_id, []).append((vid, m))
    out = []
    for pid in sorted(per):
        ms = per[pid]
        if len(ms) < k or period is None:
            continue
        up = sorted((m for _, m in ms), key=_uptime_ratio, reverse=True)[k - 1]
        answered = [m.response_ms_avg for _, m in ms if m.response_ms_avg is not None]
        rt = sorted(answered)[k - 1] if len(answered) >= k else None
        failures = sorted((m.failures for _, m in ms), reverse=True)[k - 1]
        out.append(AgreedMeasurement(pid, period[0], period[1], up.expected_ms // 1000,
                                     up.up_ms // 1000, up.uptime_bps, rt, failures,
                                     tuple(sorted(v for v, _ in ms))))
    return out


def report_findings(agreed: Iterable[AgreedMeasurement], min_uptime_bps: int = 9_900) -> list[Finding]:
    """A confirmed pass for each provider the validators agree was up and failed nothing in
    the period: it counts towards clearing a suspect provider (``EscalationPolicy``)."""
    out = []
    for a in agreed:
        if a.failures == 0 and a.uptime_bps >= min_uptime_bps:
            out.append(Finding(a.provider_id, Check.HEARTBEAT, f"report:{to_ms(a.period_start)}",
                               Outcome.OK, a.validators, (), a.period_end))
    return out
