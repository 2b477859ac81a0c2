"""Providers' stake in the SQL ledger (issue 14): bond, unbond, withdraw, slash.

A mixin of ``SqlEscrowBackend`` (it uses that class's transaction runner, moves and clock):
the account ``stake:<provider>`` holds bonded + unbonding stake, ``ledger_stakes`` splits it.
The rules are the contract's (docs/chain.md, "Stake"): unbonding lasts ``unbonding_seconds``
and stays slashable; a slash takes bonded stake first, never more than there is, and pays the
renter of the named job (one of the provider's escrows) or the platform account.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hcp.errors import InsufficientStakeError, StakeUnbondingError, ValidationError
from hcp.marketplace import models as m
from hcp.marketplace.amounts import check_amount
from hcp.marketplace.escrow_backend import Slash, StakeState
from hcp.marketplace.ledger_names import _check_key, _stake_account, check_account_name

if TYPE_CHECKING:
    from hcp.marketplace.ledger_tx import ReadTx as _ReadTx


class StakeBook:
    """Stake operations over the ledger's own transactions (see ``SqlEscrowBackend._run``)."""

    platform_account: str
    clock: Callable[[], datetime]
    unbonding: timedelta

    if TYPE_CHECKING:
        def _run(self, op_key: str, kind: str, job_id: str | None, params: dict[str, Any],
                 body: Callable[[Session], dict[str, Any]]) -> dict[str, Any]: ...
        def _move(self, s: Session, moves: list[tuple[str, str, int]]) -> None: ...
        @staticmethod
        def _ensure(s: Session, name: str, kind: str) -> None: ...
        def _read(self) -> _ReadTx: ...

    def staked_total(self) -> int:
        with self._read() as s:
            return sum(s.scalars(select(m.LedgerAccount.balance).where(m.LedgerAccount.kind == "stake")))

    def stake_of(self, provider: str) -> StakeState:
        with self._read() as s:
            row = s.get(m.LedgerStake, provider)
            if row is None:
                return StakeState(provider, 0, 0, None)
            return StakeState(provider, row.bonded, row.unbonding, row.release_at)


    # -- stake ----------------------------------------------------------------------------
    # stake, request_unstake and withdraw_stake share one key per (provider, op_id), as on
    # chain (PaymentEscrow.stakeOps): the same op id used for another kind is a conflict.
    def stake(self, provider: str, amount: int, op_id: str) -> StakeState:
        check_account_name(provider)
        check_amount(amount)

        def body(s: Session) -> dict[str, Any]:
            row = self._stake_row(s, provider)
            self._ensure(s, _stake_account(provider), "stake")
            self._move(s, [(provider, _stake_account(provider), amount)])
            row.bonded += amount
            return _stake_result(row)

        key = f"stakeop:{provider}:{_check_key(op_id, 'op_id')}"
        return _stake_state(provider, self._run(key, "stake", None, {"op": "stake", "amount": str(amount)},
                                                body))

    def request_unstake(self, provider: str, amount: int, op_id: str) -> StakeState:
        check_account_name(provider)
        check_amount(amount)

        def body(s: Session) -> dict[str, Any]:
            row = self._stake_row(s, provider)
            if amount > row.bonded:
                raise InsufficientStakeError(f"{provider} has {row.bonded} bonded, not {amount}",
                                             provider=provider, bonded=str(row.bonded),
                                             requested=str(amount))
            row.bonded -= amount
            row.unbonding += amount
            row.release_at = self.clock() + self.unbonding
            return _stake_result(row)

        key = f"stakeop:{provider}:{_check_key(op_id, 'op_id')}"
        params = {"op": "unstake", "amount": str(amount)}
        return _stake_state(provider, self._run(key, "unstake", None, params, body))

    def withdraw_stake(self, provider: str, op_id: str) -> int:
        check_account_name(provider)

        def body(s: Session) -> dict[str, Any]:
            row = self._stake_row(s, provider)
            if row.unbonding == 0:
                raise StakeUnbondingError(f"{provider} has nothing unbonding", provider=provider)
            if row.release_at is None or self.clock() < row.release_at:
                raise StakeUnbondingError(f"{provider}'s stake is unbonding until {row.release_at}",
                                          provider=provider, release_at=str(row.release_at))
            amount = row.unbonding
            self._ensure(s, provider, "user")
            self._move(s, [(_stake_account(provider), provider, amount)])
            row.unbonding = 0
            row.release_at = None
            return {"amount": str(amount)}

        key = f"stakeop:{provider}:{_check_key(op_id, 'op_id')}"
        return int(self._run(key, "withdraw", None, {"op": "withdraw"}, body)["amount"])

    def slash(self, provider: str, amount: int, op_id: str, job_id: str | None = None) -> Slash:
        check_account_name(provider)
        check_amount(amount)
        if job_id is not None:
            _check_key(job_id, "job_id")
        params = {"provider": provider, "amount": str(amount), "job_id": job_id}

        def body(s: Session) -> dict[str, Any]:
            beneficiary = self.platform_account
            if job_id is not None:
                esc = s.get(m.LedgerEscrow, job_id)
                if esc is None or esc.provider != provider:
                    raise ValidationError("a slash names a job of the slashed provider", job_id=job_id,
                                          provider=provider)
                beneficiary = esc.renter
            row = self._stake_row(s, provider)
            from_bonded = min(amount, row.bonded)
            from_unbonding = min(amount - from_bonded, row.unbonding)
            row.bonded -= from_bonded
            row.unbonding -= from_unbonding
            if row.unbonding == 0:
                row.release_at = None
            taken = from_bonded + from_unbonding
            self._ensure(s, _stake_account(provider), "stake")
            self._ensure(s, beneficiary, "user")
            self._move(s, [(_stake_account(provider), beneficiary, taken)])
            return {"amount": str(taken), "beneficiary": beneficiary}

        result = self._run(f"slash:{_check_key(op_id, 'op_id')}", "slash", job_id, params, body)
        return Slash(provider, int(result["amount"]), result["beneficiary"], job_id)

    @staticmethod
    def _stake_row(s: Session, provider: str) -> m.LedgerStake:
        row = s.get(m.LedgerStake, provider, with_for_update=True)
        if row is None:
            row = m.LedgerStake(provider=provider, bonded=0, unbonding=0, release_at=None)
            s.add(row)
            s.flush()
        return row


def _stake_result(row: m.LedgerStake) -> dict[str, Any]:
    return {"bonded": str(row.bonded), "unbonding": str(row.unbonding),
            "release_at": row.release_at.isoformat() if row.release_at else None}


def _stake_state(provider: str, result: dict[str, Any]) -> StakeState:
    at = result.get("release_at")
    return StakeState(provider, int(result["bonded"]), int(result["unbonding"]),
                      datetime.fromisoformat(at) if at else None)
