"""k-of-n agreement: a finding takes effect only when k validators of the set report the same
outcome on the same subject.

The settings require a majority (2k > n), so at most one outcome can ever gather k votes: the
decision on a subject does not depend on the order the votes arrive in, and a lying or broken
validator (fewer than k of them, in general) can neither cause a finding nor, with k honest
validators left, prevent one. A subject without a quorum when its window ends closes with no
outcome and no effect.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hcp.clock import Clock
from hcp.errors import ConfigError, EquivocationError, UnknownValidatorError
from hcp.oracle.findings import Check, Finding, Observation, Outcome

Key = tuple[str, Check, str]


@dataclass(slots=True)
class _Open:
    opened_at: datetime
    votes: dict[str, Outcome] = field(default_factory=dict)


class QuorumBook:
    def __init__(self, validators: Iterable[str], k: int, window_seconds: int,
                 clock: Clock) -> None:
        self.validators = frozenset(validators)
        n = len(self.validators)
        if not (1 <= k <= n and 2 * k > n):
            raise ConfigError(f"quorum {k} of {n} validators must be a majority (n/2 < k <= n)")
        self.k = k
        self.window = timedelta(seconds=window_seconds)
        self.clock = clock
        self._open: dict[Key, _Open] = {}
        self._decided: dict[Key, tuple[datetime, Outcome | None]] = {}

    def add(self, obs: Observation) -> Finding | None:
        """Count one vote; the finding when this vote completes a quorum, else None. A vote
        repeated (a validator retrying) counts once; a validator changing its vote is
        refused and its first vote stands."""
        if obs.validator_id not in self.validators:
            raise UnknownValidatorError("votes come from the validator set only",
                                        validator=obs.validator_id)
        key = obs.key
        if key in self._decided:
            return None
        o = self._open.get(key)
        if o is None:
            o = self._open[key] = _Open(self.clock.now())
        prior = o.votes.get(obs.validator_id)
        if prior is not None:
            if prior is not obs.outcome:
                raise EquivocationError("a validator voted twice, differently, on one subject",
                                        validator=obs.validator_id, subject=obs.subject,
                                        first=prior.value, second=obs.outcome.value)
            return None
        o.votes[obs.validator_id] = obs.outcome
        agreeing = sorted(v for v, out in o.votes.items() if out is obs.outcome)
        if len(agreeing) < self.k:
            return None
        return self._decide(key, o, obs.outcome)

    def close_expired(self) -> list[Finding]:
        """Subjects whose window passed without a quorum, closed with no outcome; also forgets
        decisions older than four windows (a late vote on one opens nothing that matters:
        its finding id is the same, and applied findings are kept by id in the store)."""
        now = self.clock.now()
        out = [self._decide(key, o, None) for key, o in list(self._open.items())
               if now - o.opened_at >= self.window]
        horizon = now - 4 * self.window
        for key in [k for k, (at, _) in self._decided.items() if at < horizon]:
            del self._decided[key]
        return out

    def open_subjects(self) -> int:
        return len(self._open)

    def _decide(self, key: Key, o: _Open, outcome: Outcome | None) -> Finding:
        del self._open[key]
        now = self.clock.now()
        self._decided[key] = (now, outcome)
        agreeing = tuple(sorted(v for v, out in o.votes.items() if out is outcome))
        dissenting = tuple(sorted((v, out) for v, out in o.votes.items() if out is not outcome))
        return Finding(key[0], key[1], key[2], outcome, agreeing, dissenting, now)
