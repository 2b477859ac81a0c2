"""The money rules of escrow, and the interface both ledgers implement.

Two backends keep the same books: the SQL double-entry ledger (embedded default) and the
on-chain ``PaymentEscrow`` contract (``hcp.marketplace.chain``). Every amount is an integer in the
token's smallest unit (18 decimals). Every operation is idempotent, keyed by ``job_id``
(and ``op_id`` for mints), so a retry after a crash never moves money twice.

Providers also stake tokens (to list offers): ``stake`` bonds free balance, ``request_unstake``
moves part of the bond to unbonding for ``UNBONDING_SECONDS`` (still slashable), then
``withdraw_stake`` pays it back; ``slash`` takes stake (bonded first) and gives it to the harmed
renter of a named job, or to the platform account when no job is named.

Invariant on both backends, after every operation:
    total_supply() == sum(balance_of(a) for every account) + escrowed_total() + staked_total()
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

TOKEN_DECIMALS = 18
ONE_TOKEN = 10**TOKEN_DECIMALS
PLATFORM_FEE_BPS = 200  # 2% to the platform, 98% to the provider
BPS = 10_000
SECONDS_PER_HOUR = 3600
UNBONDING_SECONDS = 7 * 86400  # PaymentEscrow.UNBONDING_PERIOD


def cost_for(price_per_hour: int, duration_seconds: int) -> int:
    """price × duration, floored to the smallest unit (the renter never pays a rounding unit)."""
    if price_per_hour < 0 or duration_seconds < 0:
        raise ValueError("price and duration must be non-negative")
    return price_per_hour * duration_seconds // SECONDS_PER_HOUR


def split_payment(actual_cost: int) -> tuple[int, int]:
    """(provider, platform): the platform's 2% is floored; the provider gets the exact rest."""
    if actual_cost < 0:
        raise ValueError("cost must be non-negative")
    platform = actual_cost * PLATFORM_FEE_BPS // BPS
    return actual_cost - platform, platform


class EscrowState(str, enum.Enum):
    LOCKED = "LOCKED"
    RELEASED = "RELEASED"   # settled: paid out (and the rest refunded)
    REFUNDED = "REFUNDED"   # settled: everything back to the renter


@dataclass(frozen=True)
class Settlement:
    """Where the money of one escrow went (all smallest units)."""

    job_id: str
    to_provider: int
    to_platform: int
    refunded: int
    remaining_locked: int


@dataclass(frozen=True)
class StakeState:
    """One provider's stake (smallest units). ``release_at``: when ``unbonding`` may be withdrawn."""

    provider: str
    bonded: int
    unbonding: int
    release_at: datetime | None

    @property
    def total(self) -> int:
        return self.bonded + self.unbonding


@dataclass(frozen=True)
class Slash:
    """What one slash took (at most the provider's whole stake) and who received it."""

    provider: str
    amount: int
    beneficiary: str
    job_id: str | None


class EscrowBackend(Protocol):
    """Implemented by ``hcp.marketplace.sql_ledger.SqlEscrowBackend`` and
    ``hcp.marketplace.chain.escrow_backend.ChainEscrowBackend``."""

    platform_account: str

    def total_supply(self) -> int: ...
    def balance_of(self, account: str) -> int: ...
    def accounts(self) -> list[str]: ...
    def escrowed_total(self) -> int: ...
    def locked_for(self, job_id: str) -> int: ...
    def staked_total(self) -> int: ...
    def stake_of(self, provider: str) -> StakeState: ...

    def mint(self, account: str, amount: int, op_id: str) -> None:
        """Create tokens (faucet / purchase). Idempotent by ``op_id``."""

    def transfer(self, sender: str, recipient: str, amount: int, op_id: str) -> None:
        """Move free balance. Idempotent by ``op_id``."""

    def lock(self, job_id: str, renter: str, provider: str, amount: int) -> None:
        """Move ``amount`` (the job's max cost) from the renter into escrow. Idempotent by job."""

    def partial_release(self, job_id: str, amount: int, op_id: str) -> Settlement:
        """Pay ``amount`` of the locked sum now (98/2 split); the rest stays locked."""

    def release(self, job_id: str, actual_cost: int) -> Settlement:
        """Settle: pay ``actual_cost`` (98/2), refund what is left to the renter."""

    def refund(self, job_id: str) -> Settlement:
        """Settle: everything still locked goes back to the renter."""

    def split(self, job_id: str, provider_bps: int) -> Settlement:
        """Settle a dispute: ``provider_bps``/10000 of what is locked is paid (98/2), the rest refunded.
        Inconclusive disputes use 5000."""

    def stake(self, provider: str, amount: int, op_id: str) -> StakeState:
        """Bond ``amount`` of the provider's free balance. Idempotent by (provider, ``op_id``)."""

    def request_unstake(self, provider: str, amount: int, op_id: str) -> StakeState:
        """Move ``amount`` of the bond to unbonding; the wait restarts for all that is unbonding."""

    def withdraw_stake(self, provider: str, op_id: str) -> int:
        """Pay back everything unbonding once its wait is over; the amount paid."""

    def slash(self, provider: str, amount: int, op_id: str, job_id: str | None = None) -> Slash:
        """Take up to ``amount`` of the stake (bonded first, then unbonding): to the renter of
        ``job_id`` (an escrow of this provider) or, without one, to the platform account.
        Idempotent by ``op_id``."""
