"""Typed messages of the optimizer: what is sent to the fleet, what comes back, what is recorded."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

REASON_PREFIX = "optimizer"


class OutcomeStatus(str, Enum):
    APPLIED = "APPLIED"  # the device committed the change
    NOOP = "NOOP"  # the device was already in the target mode; nothing changed
    FAILED = "FAILED"  # the device refused or the call failed; not retried
    TIMEOUT = "TIMEOUT"  # no answer within the apply timeout; not retried
    # After a restart: an issued decision with no outcome, settled against the committed record.
    RECONCILED_APPLIED = "RECONCILED_APPLIED"
    RECONCILED_NOT_APPLIED = "RECONCILED_NOT_APPLIED"

    @property
    def applied(self) -> bool:
        return self in (OutcomeStatus.APPLIED, OutcomeStatus.RECONCILED_APPLIED)


def switch_reason(decision_id: str, reason: str) -> str:
    """The reason a device records with the switch: it names the decision, so a restarted
    optimizer can find out from the device's own committed record whether it was applied."""
    return f"{REASON_PREFIX} {decision_id} {reason}"


@dataclass(frozen=True)
class ApplyOrder:
    decision_id: str
    device_id: str
    facility: str
    kind: str  # "gpu" | "asic"
    to_mode: str
    reason: str  # as recorded by the device (see switch_reason)


@dataclass(frozen=True)
class ApplyResult:
    decision_id: str
    ok: bool
    latency_ms: float | None
    generation: int | None = None
    noop: bool = False
    timed_out: bool = False
    error: str | None = None


@dataclass(frozen=True)
class PreemptionRecord:
    """An explicit preemption of a held GPU for a facility's power cap, as carried out."""

    device_id: str
    facility: str
    holder: str  # the hold's key: "job:<id>" (the agent stops it) or "workload:<id>" (requeued)
    at: datetime
    ok: bool
    reason: str
    error: str | None = None


class FleetPort(Protocol):
    """Where decisions are carried out (GPU and facility actors in production, fakes in tests).

    ``apply`` sends every order first and then waits for all of them, up to ``timeout_s`` in
    total; it returns one result per order and never retries.
    """

    def apply(self, orders: Sequence[ApplyOrder], timeout_s: float) -> list[ApplyResult]: ...

    # Optional: ``preempt(device_id, holder, reason) -> bool`` stops the job or workload that
    # holds a GPU (the agent settles a job with the marketplace's refund rules; the router
    # requeues a workload); True when the holder was found and told to stop.


class PolicyLike(Protocol):
    """What the optimizer needs from a policy (``hcp.economics.policy.FleetPolicy`` implements it)."""

    def decide(self, tick: Any, current_modes: Mapping[str, str], now: datetime,
               fixed: Collection[str] = ()) -> list[Any]:
        """Decisions for the devices whose mode should change; ``fixed`` devices (held by a
        customer's job or workload) keep theirs."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, d: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class DeviceMode:
    """A device's committed mode, as the store holds it."""

    device_id: str
    kind: str
    mode: str
    generation: int
    mode_since: datetime
    held_by: str | None = None  # a job or workload holds it: the optimizer leaves it alone


@dataclass(frozen=True)
class ModeChange:
    device_id: str
    at: datetime
    from_mode: str
    to_mode: str
    total_ms: float | None = None  # how long the switch paused the device (earning nothing)


@dataclass(frozen=True)
class DecisionRecord:
    decision_id: str
    tick_at: datetime
    issued_at: datetime
    device_id: str
    facility: str
    kind: str
    from_mode: str
    to_mode: str
    reason: str
    expected_gain_usd_per_hour: float
    issued_generation: int


@dataclass(frozen=True)
class OutcomeRecord:
    decision_id: str
    at: datetime
    status: OutcomeStatus
    latency_ms: float | None = None
    generation: int | None = None
    error: str | None = None
    realized_profit_micro_usd: int | None = None


@dataclass(frozen=True)
class StepRecord:
    tick_at: datetime
    at: datetime
    tick: dict[str, Any]
    decisions: int
    period_start: datetime | None
    realized_profit_micro_usd: int | None
    policy_state: dict[str, Any] | None


@dataclass(frozen=True)
class StepResult:
    """What one ``OptimizerService.step`` did."""

    at: datetime
    tick_at: datetime | None
    skipped: str | None = None  # "no_tick" | "already_processed"
    decisions: list[DecisionRecord] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    reconciled: list[OutcomeRecord] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)  # devices with an unsettled decision
    realized_profit_micro_usd: int | None = None
    preemptions: list[PreemptionRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return _jsonable(d)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, datetime):
        return x.isoformat()
    if isinstance(x, Enum):
        return x.value
    return x


@dataclass(frozen=True)
class DecisionOutcome:
    """A decision and what became of it (None while still issued)."""

    decision: DecisionRecord
    outcome: OutcomeRecord | None = None


@dataclass(frozen=True)
class Profitability:
    """The latest tick and every device's expected USD/hour per mode at its prices."""

    tick: dict[str, Any] | None
    devices: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {"tick": self.tick, "devices": {k: dict(v) for k, v in self.devices.items()}}


@dataclass(frozen=True)
class OptimizerStatus:
    running: bool
    interval_s: float
    steps: int
    errors: int
    last_tick_at: datetime | None = None
    last_realized_profit_micro_usd: int | None = None
    last_result: StepResult | None = None
    pid: int = 0

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))
