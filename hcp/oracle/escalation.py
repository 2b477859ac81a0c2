"""What a confirmed finding does to a provider: warn, suspect, penalise, slash.

One ``Standing`` per provider, stepped by confirmed findings only (an unconfirmed one changes
nothing). The rules, with the default strikes (docs/oracle.md has the table):

- HEALTHY -> SUSPECT on any confirmed failure: a warning, challenges every minute instead of
  every six, and no new renters; a failure of a kind penalises once its strikes reach that
  kind's threshold (data fraud and bad signatures: the 2nd; timeouts: the 3rd), and again at
  every further one while the provider stays suspect.
- Confirmed downtime (the 4th missed heartbeat in a row, already a tolerance) penalises at
  once and makes the provider DOWN; it is not challenged while down (a timeout then is the
  outage, already paid for, not a second fault). Its confirmed return makes it SUSPECT.
- Containment, not punishment, for being briefly unreachable: timeouts cost points only from
  the 3rd; but a provider whose heartbeats keep arriving while it never answers challenges
  is hiding a missing image, so ``timeouts_as_fraud_after`` consecutive timeouts count as
  failed possession (data fraud and slash), or not answering would be cheaper than lying.
- ``clear_after_passes`` consecutive confirmed passes (a challenge round passed, or an hour
  of full uptime agreed by the validators' reports) make a suspect provider HEALTHY again,
  its strikes forgotten.

Every penalty carries an id derived from the finding and the reason alone, so applying the
same decision twice (a validator killed mid-round and restarted, or two validators deciding
the same finding) is recognised and done once (``OracleRepository.commit_decision``).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime

from hcp.oracle.findings import Finding, Outcome
from hcp.oracle.settings import OracleSettings

_RECENT = 64


class ProviderState(enum.StrEnum):
    HEALTHY = "healthy"  # offered to renters, challenged at the normal cadence
    SUSPECT = "suspect"  # warned: re-checked sooner, not offered to new renters
    DOWN = "down"        # outage confirmed: not offered, not challenged until it is back


class PenaltyReason(enum.StrEnum):  # the rental document's applyPenalty reasons
    DOWNTIME = "downtime"
    TIMEOUT = "timeout"
    DATA_FRAUD = "data_fraud"
    INVALID_SIG = "invalid_sig"


def penalty_id(provider_id: str, finding_id: str, reason: PenaltyReason) -> str:
    h = hashlib.sha256(f"hcp-oracle/penalty/v1\n{provider_id}\n{finding_id}\n{reason.value}"
                       .encode())
    return "pen_" + h.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Penalty:
    penalty_id: str
    provider_id: str
    finding_id: str
    reason: PenaltyReason
    points: int      # reputation points taken
    slash_bps: int   # share of the provider's stake slashed (0: none)


@dataclass(frozen=True, slots=True)
class Warning:
    provider_id: str
    finding_id: str
    outcome: Outcome
    strikes: int
    strikes_to_penalty: int


@dataclass(frozen=True, slots=True)
class Standing:
    provider_id: str
    state: ProviderState
    since: datetime
    strikes: tuple[tuple[Outcome, int], ...] = ()  # failures confirmed since last HEALTHY
    consecutive_timeouts: int = 0
    clean_passes: int = 0
    recent: tuple[str, ...] = field(default=(), repr=False)  # finding ids applied lately
    version: int = 0  # steps applied: the store's guard against two writers

    def strikes_of(self, outcome: Outcome) -> int:
        return dict(self.strikes).get(outcome, 0)

    def with_strike(self, outcome: Outcome) -> Standing:
        s = dict(self.strikes)
        s[outcome] = s.get(outcome, 0) + 1
        return replace(self, strikes=tuple(sorted(s.items())))

    @property
    def offerable(self) -> bool:
        return self.state is ProviderState.HEALTHY


@dataclass(frozen=True, slots=True)
class Decision:
    finding: Finding
    before: Standing
    after: Standing
    penalties: tuple[Penalty, ...] = ()
    warnings: tuple[Warning, ...] = ()
    duplicate: bool = False  # this finding was already applied to the standing

    @property
    def changed_state(self) -> bool:
        return self.before.state is not self.after.state


class EscalationPolicy:
    def __init__(self, settings: OracleSettings) -> None:
        self.s = settings
        self._rules = {
            Outcome.DOWNTIME: (settings.downtime_strikes, PenaltyReason.DOWNTIME,
                               settings.downtime_points, 0),
            Outcome.TIMEOUT: (settings.timeout_strikes, PenaltyReason.TIMEOUT,
                              settings.timeout_points, 0),
            Outcome.DATA_FRAUD: (settings.data_fraud_strikes, PenaltyReason.DATA_FRAUD,
                                 settings.data_fraud_points, settings.data_fraud_slash_bps),
            Outcome.BAD_SIGNATURE: (settings.bad_signature_strikes, PenaltyReason.INVALID_SIG,
                                    settings.bad_signature_points, 0),
        }

    @staticmethod
    def initial(provider_id: str, now: datetime) -> Standing:
        return Standing(provider_id, ProviderState.HEALTHY, now)

    def challenge_interval_seconds(self, state: ProviderState) -> int | None:
        """Mean seconds to the next possession challenge (None: do not challenge)."""
        return {ProviderState.HEALTHY: self.s.challenge_interval_seconds,
                ProviderState.SUSPECT: self.s.suspect_challenge_interval_seconds,
                ProviderState.DOWN: None}[state]

    def step(self, standing: Standing, finding: Finding) -> Decision:
        if finding.provider_id != standing.provider_id:
            raise ValueError("a finding about another provider")
        fid = finding.finding_id
        if fid in standing.recent:
            return Decision(finding, standing, standing, duplicate=True)
        if finding.outcome is None:  # no quorum: nothing happens, by design
            return Decision(finding, standing, standing)
        after, penalties, warnings = self._apply(standing, finding, finding.outcome)
        after = replace(after, recent=(standing.recent + (fid,))[-_RECENT:],
                        version=standing.version + 1)
        if after.state is not standing.state:
            after = replace(after, since=finding.decided_at)
        return Decision(finding, standing, after, tuple(penalties), tuple(warnings))

    def open_warnings(self, st: Standing) -> list[Warning]:
        """The warnings a standing still carries: each kind of failure confirmed since the
        provider was last healthy that has not reached its penalty yet. A restarted
        coordinator delivers these again (the agent's repair is idempotent), so a crash
        between the decision and the agent's next poll never swallows the warning."""
        if st.state is ProviderState.HEALTHY:
            return []
        last = st.recent[-1] if st.recent else ""
        out = []
        for outcome, strikes in st.strikes:
            rule = self._rules.get(outcome)
            if rule is not None and strikes < rule[0]:
                out.append(Warning(st.provider_id, last, outcome, strikes, rule[0]))
        return out

    def _apply(self, st: Standing, f: Finding, outcome: Outcome
               ) -> tuple[Standing, list[Penalty], list[Warning]]:
        down = st.state is ProviderState.DOWN
        if outcome is Outcome.OK:
            if down:  # back: heartbeats resumed, or it answered a challenge
                return replace(st, state=ProviderState.SUSPECT, clean_passes=0,
                               consecutive_timeouts=0), [], []
            if st.state is ProviderState.HEALTHY:
                return replace(st, consecutive_timeouts=0), [], []
            passes = st.clean_passes + 1
            if passes >= self.s.clear_after_passes:
                return Standing(st.provider_id, ProviderState.HEALTHY, st.since,
                                version=st.version), [], []
            return replace(st, clean_passes=passes, consecutive_timeouts=0), [], []
        if outcome is Outcome.DOWNTIME:
            if down:
                return st, [], []
            st = replace(st.with_strike(outcome), state=ProviderState.DOWN, clean_passes=0,
                         consecutive_timeouts=0)
            return (st, *self._strike(st, f, outcome))
        if outcome is Outcome.TIMEOUT:
            if down:  # containment: the outage is the cause and is already paid for
                return st, [], []
            st = replace(st.with_strike(outcome), state=ProviderState.SUSPECT, clean_passes=0,
                         consecutive_timeouts=st.consecutive_timeouts + 1)
            penalties, warnings = self._strike(st, f, outcome)
            if st.consecutive_timeouts >= self.s.timeouts_as_fraud_after:
                st = replace(st.with_strike(Outcome.DATA_FRAUD), consecutive_timeouts=0)
                penalties.append(self._penalty(st, f, Outcome.DATA_FRAUD))
            return st, penalties, warnings
        # DATA_FRAUD or BAD_SIGNATURE: something answered, so the agent is up
        st = replace(st.with_strike(outcome), state=ProviderState.SUSPECT, clean_passes=0,
                     consecutive_timeouts=0)
        return (st, *self._strike(st, f, outcome))

    def _strike(self, st: Standing, f: Finding, outcome: Outcome
                ) -> tuple[list[Penalty], list[Warning]]:
        threshold = self._rules[outcome][0]
        strikes = st.strikes_of(outcome)
        if strikes >= threshold:
            return [self._penalty(st, f, outcome)], []
        return [], [Warning(st.provider_id, f.finding_id, outcome, strikes, threshold)]

    def _penalty(self, st: Standing, f: Finding, outcome: Outcome) -> Penalty:
        _, reason, points, slash = self._rules[outcome]
        return Penalty(penalty_id(st.provider_id, f.finding_id, reason), st.provider_id,
                       f.finding_id, reason, points, slash)
