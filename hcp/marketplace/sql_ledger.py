"""SqlEscrowBackend: the escrow rules of ``escrow_backend`` kept as a double-entry ledger in SQL.

Every operation is one database transaction that writes one ``ledger_transactions`` row
(whose ``op_key`` is UNIQUE: the idempotency key) and the entries it moves. An entry moves
``amount`` from ``debit`` to ``credit``, so each transaction sums to zero by construction.
Accounts: users (any name), ``escrow:<job_id>`` (money locked for one job), ``stake:<provider>``
(a provider's bonded + unbonding stake, split in ``ledger_stakes``) and ``@issuance`` (whose
stored balance is the total ever minted, i.e. minus its book balance).

A retried operation finds its own transaction row and returns the recorded result without
moving anything; a crash before commit leaves nothing behind.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hcp.clock import utcnow
from hcp.errors import (
    EscrowStateError,
    IdempotencyConflictError,
    InsufficientFundsError,
    StoreError,
    SupplyLimitError,
    ValidationError,
)
from hcp.marketplace import models as m
from hcp.marketplace.amounts import MAX_TOKEN, check_amount
from hcp.marketplace.escrow_backend import (
    BPS,
    UNBONDING_SECONDS,
    EscrowState,
    Settlement,
    split_payment,
)
from hcp.marketplace.ledger_names import (  # noqa: F401  (check_account_name: re-exported)
    ESCROW_PREFIX,
    ISSUANCE,
    STAKE_PREFIX,
    _check_key,
    _escrow_account,
    _stake_account,
    check_account_name,
)
from hcp.marketplace.ledger_tx import ReadTx as _ReadTx
from hcp.marketplace.sql_stake import StakeBook

log = logging.getLogger(__name__)

Move = tuple[str, str, int]  # (debit, credit, amount)
FaultHook = Callable[[str], None]


class SqlEscrowBackend(StakeBook):
    """The embedded escrow ledger. ``fault`` (tests only) is called inside each transaction just
    before commit, with the operation kind; raising there simulates a crash mid-transaction."""

    def __init__(self, engine: Engine, platform_account: str = "platform",
                 fault: FaultHook | None = None, clock: Callable[[], datetime] = utcnow,
                 unbonding_seconds: int = UNBONDING_SECONDS) -> None:
        self.engine = engine
        self.platform_account = check_account_name(platform_account)
        self.fault = fault
        self.clock = clock
        self.unbonding = timedelta(seconds=unbonding_seconds)
        self._session = sessionmaker(engine, expire_on_commit=False)
        # One writer per process: SQLite cannot upgrade a read transaction to a write once another
        # connection wrote, and PostgreSQL row locks make this lock redundant but harmless.
        self._lock = threading.RLock()

    # -- reads ----------------------------------------------------------------------------
    def total_supply(self) -> int:
        with self._read() as s:
            acct = s.get(m.LedgerAccount, ISSUANCE)
            return acct.balance if acct else 0

    def balance_of(self, account: str) -> int:
        with self._read() as s:
            acct = s.get(m.LedgerAccount, account)
            return acct.balance if acct and acct.kind == "user" else 0

    def accounts(self) -> list[str]:
        with self._read() as s:
            return list(s.scalars(select(m.LedgerAccount.name).where(m.LedgerAccount.kind == "user")
                                  .order_by(m.LedgerAccount.name)))

    def escrowed_total(self) -> int:
        with self._read() as s:
            return sum(s.scalars(select(m.LedgerAccount.balance).where(m.LedgerAccount.kind == "escrow")))

    def locked_for(self, job_id: str) -> int:
        with self._read() as s:
            row = s.get(m.LedgerEscrow, job_id)
            return row.remaining if row else 0

    def escrow(self, job_id: str) -> m.LedgerEscrow | None:
        with self._read() as s:
            return s.get(m.LedgerEscrow, job_id)

    def verify_books(self) -> None:
        """Re-derive every balance from the entries; raise if anything disagrees."""
        with self._read() as s:
            derived: dict[str, int] = {}
            for debit, credit, amount in s.execute(
                    select(m.LedgerEntry.debit, m.LedgerEntry.credit, m.LedgerEntry.amount)):
                derived[debit] = derived.get(debit, 0) - amount
                derived[credit] = derived.get(credit, 0) + amount
            if sum(derived.values()) != 0:
                raise AssertionError("ledger entries do not sum to zero")
            for acct in s.scalars(select(m.LedgerAccount)):
                book = derived.get(acct.name, 0)
                stored = -acct.balance if acct.kind == "issuance" else acct.balance
                if book != stored:
                    raise AssertionError(f"account {acct.name}: stored {stored} != entries {book}")
            for esc in s.scalars(select(m.LedgerEscrow)):
                if derived.get(_escrow_account(esc.job_id), 0) != esc.remaining:
                    raise AssertionError(f"escrow {esc.job_id} row disagrees with its account")
                if esc.locked != esc.remaining + esc.paid + esc.refunded:
                    raise AssertionError(f"escrow {esc.job_id} does not add up")
            for st in s.scalars(select(m.LedgerStake)):
                if derived.get(_stake_account(st.provider), 0) != st.bonded + st.unbonding:
                    raise AssertionError(f"stake of {st.provider} disagrees with its account")

    # -- writes ---------------------------------------------------------------------------
    def mint(self, account: str, amount: int, op_id: str) -> None:
        check_account_name(account)
        check_amount(amount)
        params = {"account": account, "amount": str(amount)}

        def body(s: Session) -> dict[str, Any]:
            self._ensure(s, ISSUANCE, "issuance")
            self._ensure(s, account, "user")
            self._move(s, [(ISSUANCE, account, amount)])
            return {}

        self._run(f"mint:{_check_key(op_id, 'op_id')}", "mint", None, params, body)

    def transfer(self, sender: str, recipient: str, amount: int, op_id: str) -> None:
        check_account_name(sender)
        check_account_name(recipient)
        check_amount(amount)
        if sender == recipient:
            raise ValidationError("sender and recipient are the same account")
        params = {"sender": sender, "recipient": recipient, "amount": str(amount)}

        def body(s: Session) -> dict[str, Any]:
            self._ensure(s, recipient, "user")
            self._move(s, [(sender, recipient, amount)])
            return {}

        self._run(f"transfer:{_check_key(op_id, 'op_id')}", "transfer", None, params, body)

    def lock(self, job_id: str, renter: str, provider: str, amount: int) -> None:
        _check_key(job_id, "job_id")
        check_account_name(renter)
        check_account_name(provider)
        check_amount(amount)
        params = {"renter": renter, "provider": provider, "amount": str(amount)}

        def body(s: Session) -> dict[str, Any]:
            if s.get(m.LedgerEscrow, job_id) is not None:
                raise EscrowStateError("an escrow for this job already exists", job_id=job_id)
            self._ensure(s, _escrow_account(job_id), "escrow")
            self._move(s, [(renter, _escrow_account(job_id), amount)])
            s.add(m.LedgerEscrow(job_id=job_id, renter=renter, provider=provider, locked=amount,
                                 remaining=amount, paid=0, refunded=0, state=EscrowState.LOCKED.value))
            return {}

        self._run(f"lock:{job_id}", "lock", job_id, params, body)

    def partial_release(self, job_id: str, amount: int, op_id: str) -> Settlement:
        _check_key(job_id, "job_id")
        check_amount(amount)
        params = {"amount": str(amount)}

        def body(s: Session) -> dict[str, Any]:
            esc = self._open_escrow(s, job_id)
            if amount > esc.remaining:
                raise EscrowStateError("partial release exceeds what is locked", job_id=job_id,
                                       locked=str(esc.remaining), requested=str(amount))
            return self._settle(s, esc, pay=amount, refund=0, final=False)

        key = f"partial:{job_id}:{_check_key(op_id, 'op_id')}"
        return self._settlement(job_id, self._run(key, "partial", job_id, params, body))

    def release(self, job_id: str, actual_cost: int) -> Settlement:
        """``actual_cost`` is the job's whole cost: what partial releases already paid counts toward it."""
        _check_key(job_id, "job_id")
        check_amount(actual_cost, positive=False)

        def body(s: Session) -> dict[str, Any]:
            esc = self._open_escrow(s, job_id)
            due = actual_cost - esc.paid
            if due < 0 or due > esc.remaining:
                raise EscrowStateError("actual cost outside what was paid and is locked", job_id=job_id,
                                       paid=str(esc.paid), locked=str(esc.remaining),
                                       actual_cost=str(actual_cost))
            return self._settle(s, esc, pay=due, refund=esc.remaining - due, final=True,
                                state=EscrowState.RELEASED)

        return self._settle_op(job_id, {"op": "release", "actual_cost": str(actual_cost)}, body)

    def refund(self, job_id: str) -> Settlement:
        _check_key(job_id, "job_id")

        def body(s: Session) -> dict[str, Any]:
            esc = self._open_escrow(s, job_id)
            return self._settle(s, esc, pay=0, refund=esc.remaining, final=True,
                                state=EscrowState.REFUNDED)

        return self._settle_op(job_id, {"op": "refund"}, body)

    def split(self, job_id: str, provider_bps: int) -> Settlement:
        _check_key(job_id, "job_id")
        if isinstance(provider_bps, bool) or not isinstance(provider_bps, int) or not 0 <= provider_bps <= BPS:
            raise ValidationError("provider_bps must be an integer in 0..10000", provider_bps=provider_bps)

        def body(s: Session) -> dict[str, Any]:
            esc = self._open_escrow(s, job_id)
            pay = esc.remaining * provider_bps // BPS
            state = EscrowState.RELEASED if pay > 0 or esc.paid > 0 else EscrowState.REFUNDED
            return self._settle(s, esc, pay=pay, refund=esc.remaining - pay, final=True, state=state)

        return self._settle_op(job_id, {"op": "split", "provider_bps": provider_bps}, body)

    # -- internals ------------------------------------------------------------------------
    def _settle_op(self, job_id: str, params: dict[str, Any],
                   body: Callable[[Session], dict[str, Any]]) -> Settlement:
        # One settlement per escrow: release, refund and split share the key.
        return self._settlement(job_id, self._run(f"settle:{job_id}", "settle", job_id, params, body))

    def _open_escrow(self, s: Session, job_id: str) -> m.LedgerEscrow:
        esc = s.get(m.LedgerEscrow, job_id, with_for_update=True)
        if esc is None:
            raise EscrowStateError("no escrow for this job", job_id=job_id)
        if esc.state != EscrowState.LOCKED.value:
            raise EscrowStateError(f"escrow already {esc.state.lower()}", job_id=job_id, state=esc.state)
        return esc

    def _settle(self, s: Session, esc: m.LedgerEscrow, pay: int, refund: int, final: bool,
                state: EscrowState = EscrowState.LOCKED) -> dict[str, Any]:
        to_provider, to_platform = split_payment(pay)
        src = _escrow_account(esc.job_id)
        self._ensure(s, esc.provider, "user")
        self._ensure(s, self.platform_account, "user")
        self._move(s, [(src, esc.provider, to_provider), (src, self.platform_account, to_platform),
                       (src, esc.renter, refund)])
        esc.paid += pay
        esc.refunded += refund
        esc.remaining -= pay + refund
        if final:
            esc.state = state.value
        return {"to_provider": str(to_provider), "to_platform": str(to_platform),
                "refunded": str(refund), "remaining_locked": str(esc.remaining)}

    @staticmethod
    def _settlement(job_id: str, result: dict[str, Any]) -> Settlement:
        return Settlement(job_id=job_id, to_provider=int(result["to_provider"]),
                          to_platform=int(result["to_platform"]), refunded=int(result["refunded"]),
                          remaining_locked=int(result["remaining_locked"]))

    @staticmethod
    def _ensure(s: Session, name: str, kind: str) -> None:
        if s.get(m.LedgerAccount, name) is None:
            s.add(m.LedgerAccount(name=name, kind=kind, balance=0))
            s.flush()

    def _move(self, s: Session, moves: list[Move]) -> None:
        tx_id = s.info["tx_id"]
        names = sorted({n for d, c, _ in moves for n in (d, c)})
        # Lock in name order so concurrent transactions on PostgreSQL never deadlock.
        accts = {a.name: a for a in s.scalars(select(m.LedgerAccount).where(m.LedgerAccount.name.in_(names))
                                              .order_by(m.LedgerAccount.name).with_for_update())}
        for debit, credit, amount in moves:
            if amount == 0:
                continue
            src = accts.get(debit)
            if src is None or (src.kind != "issuance" and src.balance < amount):
                raise InsufficientFundsError(f"{debit} has {src.balance if src else 0}, needs {amount}",
                                             account=debit, balance=str(src.balance if src else 0),
                                             required=str(amount))
            if src.kind == "issuance":
                if src.balance + amount > MAX_TOKEN:
                    # The contract's totalSupply is a uint256 too: minting past it reverts.
                    raise SupplyLimitError("the total supply would exceed 2**256 - 1",
                                           total_supply=str(src.balance), amount=str(amount))
                src.balance += amount
            else:
                src.balance -= amount
            accts[credit].balance += amount
            s.add(m.LedgerEntry(tx_id=tx_id, debit=debit, credit=credit, amount=amount))

    def _run(self, op_key: str, kind: str, job_id: str | None, params: dict[str, Any],
             body: Callable[[Session], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            try:
                with self._session.begin() as s:
                    done = s.scalar(select(m.LedgerTransaction).where(m.LedgerTransaction.op_key == op_key))
                    if done is not None:
                        return self._replay(done, params)
                    tx = m.LedgerTransaction(op_key=op_key, kind=kind, job_id=job_id, params=params,
                                             at=utcnow())
                    s.add(tx)
                    s.flush()
                    s.info["tx_id"] = tx.id
                    result = body(s)
                    tx.result = result
                    if self.fault is not None:
                        self.fault(kind)
                    return result
            except IntegrityError as exc:
                # A concurrent writer committed the same op_key first: answer with its result.
                with self._session.begin() as s:
                    done = s.scalar(select(m.LedgerTransaction).where(m.LedgerTransaction.op_key == op_key))
                    if done is None:
                        raise StoreError(f"ledger constraint violated: {exc.orig}") from exc
                    return self._replay(done, params)
            except SQLAlchemyError as exc:
                raise StoreError(f"ledger write failed: {exc}") from exc

    @staticmethod
    def _replay(done: m.LedgerTransaction, params: dict[str, Any]) -> dict[str, Any]:
        if done.params != params:
            if done.kind == "settle":
                raise EscrowStateError("escrow already settled differently", job_id=done.job_id,
                                       settled_by=done.params)
            raise IdempotencyConflictError("operation key reused with different parameters",
                                           op_key=done.op_key)
        log.debug("replayed %s", done.op_key)
        return dict(done.result or {})

    def _read(self) -> _ReadTx:
        return _ReadTx(self._session)


def settlement_dict(s: Settlement) -> dict[str, Any]:
    """JSON-safe view (amounts as decimal strings: they exceed JavaScript's safe integers)."""
    return {k: (str(v) if isinstance(v, int) else v) for k, v in asdict(s).items()}
