"""What validators report and what a quorum of them decides.

An ``Observation`` is one validator's vote on one *subject*: a named event every validator
can see the same way (``down:<last seq>`` for an outage after a given heartbeat,
``possession:<round>`` for one challenge round). A ``Finding`` is the quorum's decision on a
subject; its id is derived from the subject alone, so every validator, and a validator that
restarts mid-round, names the same finding the same way.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime


class Check(enum.StrEnum):
    HEARTBEAT = "heartbeat"
    POSSESSION = "possession"


class Outcome(enum.StrEnum):
    OK = "ok"
    DOWNTIME = "downtime"            # more than the limit of heartbeats missed in a row
    TIMEOUT = "timeout"              # no valid answer before the challenge expired
    DATA_FRAUD = "data_fraud"        # a signed answer whose bytes are not the CID's
    BAD_SIGNATURE = "bad_signature"  # only answers whose signature did not verify

    @property
    def is_failure(self) -> bool:
        return self is not Outcome.OK


def finding_id(provider_id: str, check: Check, subject: str) -> str:
    h = hashlib.sha256(f"hcp-oracle/finding/v1\n{provider_id}\n{check.value}\n{subject}".encode())
    return "fnd_" + h.hexdigest()[:32]


def downtime_subject(last_seq: int | None, registered_ms: int) -> str:
    """The outage after heartbeat ``last_seq`` (or, with none yet, since registration)."""
    return f"down:{last_seq}" if last_seq is not None else f"down:never:{registered_ms}"


def resumption_subject(down_subject: str) -> str:
    return "up:" + down_subject.removeprefix("down:")


def possession_subject(round_id: str) -> str:
    return f"possession:{round_id}"


@dataclass(frozen=True, slots=True)
class Observation:
    validator_id: str
    provider_id: str
    check: Check
    subject: str
    outcome: Outcome
    observed_at: datetime
    response_ms: int | None = None
    evidence: str | None = None  # sha256 hex of what was seen (a signed answer, a heartbeat)

    @property
    def key(self) -> tuple[str, Check, str]:
        return (self.provider_id, self.check, self.subject)

    @property
    def finding_id(self) -> str:
        return finding_id(self.provider_id, self.check, self.subject)


@dataclass(frozen=True, slots=True)
class Finding:
    provider_id: str
    check: Check
    subject: str
    outcome: Outcome | None  # None: the subject closed without a quorum (no effect)
    agreeing: tuple[str, ...]  # validators that voted ``outcome``
    dissenting: tuple[tuple[str, Outcome], ...]  # the others' votes, for watching validators
    decided_at: datetime

    @property
    def finding_id(self) -> str:
        return finding_id(self.provider_id, self.check, self.subject)

    @property
    def confirmed(self) -> bool:
        return self.outcome is not None
