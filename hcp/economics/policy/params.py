"""The knobs of the switching policy, each one explicit and printable."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from hcp.economics.devices import EconomicsParams
from hcp.errors import ValidationError


@dataclass(frozen=True)
class PolicyParams:
    """Hysteresis rules in the style users of profit-switching miners ask for.

    A device moves to a better mode only when (1) the advantage is at least
    ``threshold_pct`` percent of the larger of the two modes' profits and revenues
    (for an ASIC: the power price is that far past break-even), and at least
    ``min_gain_usd_per_hour``, (2) it has held for ``dwell_s`` -- observed over past
    ticks, or known from already-published day-ahead prices -- and (3) it pays back
    the switching cost: over the published price horizon when there is one
    (including the cost of switching back if the advantage ends inside it),
    otherwise within ``payback_s``.
    """

    threshold_pct: float = 5.0
    min_gain_usd_per_hour: float = 0.001  # never switch for less than a tenth of a cent an hour
    dwell_s: float = 3600.0
    payback_s: float = 3600.0
    use_forecast: bool = True  # use published day-ahead prices carried by the tick
    cover_switching_cost: bool = True
    gpu_may_power_down: bool = False  # False: a GPU stays warm (IDLE) unless a power cap binds
    # True: the policy may choose to rent a GPU out (a backtest of a renting fleet). Live, a GPU
    # is RENTED only while a marketplace job holds it, and the policy leaves it there.
    gpu_may_rent: bool = False
    economics: EconomicsParams = field(default_factory=EconomicsParams)

    def __post_init__(self) -> None:
        if self.threshold_pct < 0 or self.min_gain_usd_per_hour < 0:
            raise ValidationError("threshold_pct and min_gain_usd_per_hour must not be negative")
        if self.dwell_s < 0 or self.payback_s < 0:
            raise ValidationError("dwell_s and payback_s must not be negative")

    @classmethod
    def greedy(cls, economics: EconomicsParams | None = None) -> PolicyParams:
        """Switch whenever another mode is ahead right now: no threshold, dwell or cost check."""
        return cls(
            threshold_pct=0.0,
            dwell_s=0.0,
            payback_s=0.0,
            use_forecast=False,
            cover_switching_cost=False,
            economics=economics or EconomicsParams(),
        )

    def with_(self, **changes: Any) -> PolicyParams:
        return replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d["economics"] = self.economics.describe()
        return d
