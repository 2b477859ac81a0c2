"""``EscrowBackend`` on chain: GPUToken balances and the PaymentEscrow contract keep the books.

Every operation first reads what the chain already holds for its key (job id, op id) and
returns the recorded outcome when it is a replay, so a retry after a crash between send and
receipt never pays twice; the contracts refuse duplicates on their own as well. Accounts are
names mapped to custodial keys (``KeyRing``); each is labelled on chain when first used, so a
backend rebuilt from the chain and the seed lists the same accounts.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from eth_abi import encode
from eth_utils import keccak
from web3 import Web3

from hcp.errors import (
    ChainRevertError,
    EscrowStateError,
    IdempotencyConflictError,
    InsufficientFundsError,
    InsufficientStakeError,
    StakeUnbondingError,
    ValidationError,
)
from hcp.marketplace.amounts import MAX_TOKEN, check_amount
from hcp.marketplace.chain.client import ChainClient
from hcp.marketplace.chain.deploy import Contracts
from hcp.marketplace.chain.ids import job_key, op_key, transfer_terms
from hcp.marketplace.chain.keys import KeyRing, Signer
from hcp.marketplace.escrow_backend import BPS, Settlement, Slash, StakeState, split_payment
from hcp.marketplace.sql_ledger import check_account_name

log = logging.getLogger(__name__)

NONE, LOCKED, RELEASED, REFUNDED = 0, 1, 2, 3
BY_RELEASE, BY_REFUND, BY_SPLIT = 1, 2, 3  # PaymentEscrow.settledBy
OP_STAKE, OP_UNSTAKE, OP_WITHDRAW = 1, 2, 3  # PaymentEscrow.stakeOps kinds
GAS_FUNDING_WEI = 10**18          # given to a custodial account when it first needs to send
GAS_LOW_WATER_WEI = 10**17
RAW_PREFIX = "raw:"  # accounts() names an unlabelled holder "raw:0x..."
_FUNDS = {"InsufficientBalance", "InsufficientAllowance"}
_STATE = {"EscrowNotLocked", "ExceedsLocked", "EscrowExists", "JobExists", "NotDirectEscrow", "BadJobState"}


def _typed(exc: ChainRevertError, job_id: str | None = None) -> Exception:
    """The same error the SQL ledger raises for the same refusal."""
    ctx = {"job_id": job_id} if job_id else {}
    if exc.reason in _FUNDS:
        return InsufficientFundsError(exc.detail, **ctx)
    if exc.reason == "ExceedsStake":
        return InsufficientStakeError(exc.detail, **ctx)
    if exc.reason in ("NothingUnbonding", "StakeUnbonding"):
        return StakeUnbondingError(exc.detail, **ctx)
    if exc.reason == "NotProvidersJob":
        return ValidationError("a slash names a job of the slashed provider", **ctx)
    if exc.reason in _STATE:
        return EscrowStateError(exc.detail, **ctx)
    if exc.reason == "IdempotencyConflict":
        return IdempotencyConflictError(exc.detail, **ctx)
    return exc


class ChainEscrowBackend:
    """Implements ``hcp.marketplace.escrow_backend.EscrowBackend`` against deployed contracts."""

    def __init__(self, client: ChainClient, contracts: Contracts, keyring: KeyRing, operator: Signer,
                 platform_account: str = "platform") -> None:
        self.client = client
        self.c = contracts
        self.keys = keyring
        self.operator = operator
        self.platform_account = platform_account
        if keyring.address(platform_account) != Web3.to_checksum_address(contracts.deployment.platform):
            raise ValidationError("the deployment's platform address is not this keyring's "
                                  f"{platform_account!r} account (other wallet seed?)")
        self._labelled: set[str] = set()
        self._funded: set[str] = set()
        self._approved: set[str] = set()
        self._guard = threading.Lock()

    # -- reads -----------------------------------------------------------------------------
    def total_supply(self) -> int:
        return self.client.call(self.c.token.functions.totalSupply())

    def balance_of(self, account: str) -> int:
        return self.client.call(self.c.token.functions.balanceOf(self._address(account)))

    def accounts(self) -> list[str]:
        """Every token holder but the escrow contract: its on-chain label, else ``raw:<address>``."""
        out: list[str] = []
        total = self.client.call(self.c.token.functions.holderCount())
        escrow = self.c.escrow.address
        for start in range(0, total, 200):
            addrs, labels = self.client.call(self.c.token.functions.holders(start, 200))
            for addr, label in zip(addrs, labels):
                if addr != escrow:
                    out.append(label or f"{RAW_PREFIX}{addr}")
        return out

    def escrowed_total(self) -> int:
        return self.client.call(self.c.escrow.functions.totalLocked())

    def locked_for(self, job_id: str) -> int:
        return self.client.call(self.c.escrow.functions.lockedFor(job_key(job_id)))

    def staked_total(self) -> int:
        return self.client.call(self.c.escrow.functions.totalStaked())

    def stake_of(self, provider: str) -> StakeState:
        bonded, unbonding, release = self.client.call(self.c.escrow.functions.stakeOf(self._address(provider)))
        return StakeState(provider, bonded, unbonding,
                          datetime.fromtimestamp(release, UTC) if release else None)

    def escrow_record(self, job_id: str) -> dict[str, Any]:
        r = self.client.call(self.c.escrow.functions.getEscrow(job_key(job_id)))
        names = ("user", "provider", "locked", "remaining", "paid_provider", "paid_platform", "refunded",
                 "settle_provider", "settle_platform", "settle_refund", "settled_by", "settle_param", "state")
        return dict(zip(names, r))

    # -- money -----------------------------------------------------------------------------
    def mint(self, account: str, amount: int, op_id: str) -> None:
        check_account_name(account)
        check_amount(amount)
        _key(op_id, "op_id")
        to = self.ensure_account(account)
        key = op_key(op_id)
        seen = self.client.call(self.c.token.functions.mintOps(key))
        if seen != b"\x00" * 32:
            self._check_terms(seen, to, amount, op_id)
            return
        self._send(self.c.token.functions.mint(to, amount, key), self.operator)

    def transfer(self, sender: str, recipient: str, amount: int, op_id: str) -> None:
        check_account_name(sender)
        check_account_name(recipient)
        check_amount(amount)
        _key(op_id, "op_id")
        if sender == recipient:
            raise ValidationError("sender and recipient are the same account")
        signer = self.sender(sender)
        to = self.ensure_account(recipient)
        key = op_key(op_id)
        seen = self.client.call(self.c.token.functions.transferOps(signer.address, key))
        if seen != b"\x00" * 32:
            self._check_terms(seen, to, amount, op_id)
            return
        if self.balance_of(sender) < amount:
            raise InsufficientFundsError(f"{sender} holds less than {amount}", account=sender)
        self._send(self.c.token.functions.transferOp(to, amount, key), signer)

    def lock(self, job_id: str, renter: str, provider: str, amount: int) -> None:
        _key(job_id, "job_id")
        check_account_name(renter)
        check_account_name(provider)
        check_amount(amount)
        key = job_key(job_id)
        user_addr, prov_addr = self._address(renter), self._address(provider)
        rec = self.escrow_record(job_id)
        if rec["state"] != NONE:
            if (rec["user"], rec["provider"], rec["locked"]) != (user_addr, prov_addr, amount):
                raise IdempotencyConflictError(f"job {job_id} is already escrowed on other terms",
                                               job_id=job_id)
            return
        if self.balance_of(renter) < amount:
            raise InsufficientFundsError(f"{renter} cannot lock {amount}", account=renter, job_id=job_id)
        signer = self.sender(renter)
        self.ensure_account(provider)
        self.ensure_account(self.platform_account)  # the fee's recipient is listed by name
        self._approve(signer, amount)
        self._send(self.c.marketplace.functions.openEscrow(key, prov_addr, amount), signer, job_id)

    def partial_release(self, job_id: str, amount: int, op_id: str) -> Settlement:
        _key(job_id, "job_id")
        check_amount(amount)
        key, okey = job_key(job_id), op_key(_key(op_id, "op_id"))
        rec = self._existing(job_id)
        seen, remaining_after = self.client.call(self.c.escrow.functions.partialOps(key, okey))
        if seen:
            if seen != amount:
                raise IdempotencyConflictError(f"op {op_id} released {seen}, not {amount}", job_id=job_id)
            return Settlement(job_id, *split_payment(amount), 0, remaining_after)
        if rec["state"] != LOCKED:
            raise EscrowStateError(f"escrow of job {job_id} is settled", job_id=job_id)
        if amount > rec["remaining"]:
            raise EscrowStateError(f"job {job_id} has {rec['remaining']} locked, not {amount}", job_id=job_id)
        self._send(self.c.marketplace.functions.partialRelease(key, amount, okey), self.operator, job_id)
        return Settlement(job_id, *split_payment(amount), 0, self.locked_for(job_id))

    def release(self, job_id: str, actual_cost: int) -> Settlement:
        """``actual_cost`` is the job's whole cost: what partial releases paid counts toward it."""
        _key(job_id, "job_id")
        check_amount(actual_cost, positive=False)
        rec = self._existing(job_id)
        paid = rec["paid_provider"] + rec["paid_platform"]
        if rec["state"] != LOCKED:
            if (rec["settled_by"], rec["settle_param"]) == (BY_RELEASE, actual_cost):
                return self._settlement(job_id, rec)
            raise EscrowStateError("escrow already settled differently", job_id=job_id)
        if actual_cost < paid or actual_cost - paid > rec["remaining"]:
            raise EscrowStateError("actual cost outside what was paid and is locked", job_id=job_id,
                                   paid=str(paid), locked=str(rec["remaining"]), actual_cost=str(actual_cost))
        self._send(self.c.marketplace.functions.settleEscrow(job_key(job_id), actual_cost), self.operator, job_id)
        return self._settlement(job_id)

    def refund(self, job_id: str) -> Settlement:
        _key(job_id, "job_id")
        rec = self._existing(job_id)
        if rec["state"] != LOCKED:
            if rec["settled_by"] == BY_REFUND:
                return self._settlement(job_id, rec)
            raise EscrowStateError("escrow already settled differently", job_id=job_id)
        self._send(self.c.marketplace.functions.refundEscrow(job_key(job_id)), self.operator, job_id)
        return self._settlement(job_id)

    def split(self, job_id: str, provider_bps: int) -> Settlement:
        _key(job_id, "job_id")
        if isinstance(provider_bps, bool) or not isinstance(provider_bps, int) or not 0 <= provider_bps <= BPS:
            raise ValidationError("provider_bps must be an integer in 0..10000", provider_bps=provider_bps)
        rec = self._existing(job_id)
        if rec["state"] != LOCKED:
            if (rec["settled_by"], rec["settle_param"]) == (BY_SPLIT, provider_bps):
                return self._settlement(job_id, rec)
            raise EscrowStateError("escrow already settled differently", job_id=job_id)
        self._send(self.c.marketplace.functions.splitEscrow(job_key(job_id), provider_bps), self.operator,
                   job_id)
        return self._settlement(job_id)

    # -- stake -----------------------------------------------------------------------------
    # The provider signs its own stake operations (custodial key); an oracle (the operator)
    # slashes. Each reads the op's record first, so a replay sends nothing.
    def stake(self, provider: str, amount: int, op_id: str) -> StakeState:
        check_account_name(provider)
        check_amount(amount)
        signer = self.sender(provider)
        okey = op_key(_key(op_id, "op_id"))
        if self._stake_op_done(signer.address, okey, OP_STAKE, amount, op_id):
            return self.stake_of(provider)
        if self.balance_of(provider) < amount:
            raise InsufficientFundsError(f"{provider} cannot stake {amount}", account=provider)
        self._approve(signer, amount)
        self._send(self.c.marketplace.functions.stake(amount, okey), signer)
        return self.stake_of(provider)

    def request_unstake(self, provider: str, amount: int, op_id: str) -> StakeState:
        check_account_name(provider)
        check_amount(amount)
        signer = self.sender(provider)
        okey = op_key(_key(op_id, "op_id"))
        if not self._stake_op_done(signer.address, okey, OP_UNSTAKE, amount, op_id):
            self._send(self.c.marketplace.functions.requestUnstake(amount, okey), signer)
        return self.stake_of(provider)

    def withdraw_stake(self, provider: str, op_id: str) -> int:
        check_account_name(provider)
        signer = self.sender(provider)
        okey = op_key(_key(op_id, "op_id"))
        kind, amount = self.client.call(self.c.escrow.functions.stakeOps(signer.address, okey))
        if kind == 0:
            self._send(self.c.marketplace.functions.withdrawStake(okey), signer)
            kind, amount = self.client.call(self.c.escrow.functions.stakeOps(signer.address, okey))
        if kind != OP_WITHDRAW:
            raise IdempotencyConflictError(f"op {op_id} was used for another stake operation", op_id=op_id)
        return amount

    def slash(self, provider: str, amount: int, op_id: str, job_id: str | None = None,
              reason: str = "penalty") -> Slash:
        check_account_name(provider)
        check_amount(amount)
        okey = op_key(_key(op_id, "op_id"))
        jkey = job_key(_key(job_id, "job_id")) if job_id is not None else b"\x00" * 32
        prov = self._address(provider)
        self.ensure_account(self.platform_account)  # a beneficiary is listed by name
        terms, taken, to = self.client.call(self.c.escrow.functions.slashOps(okey))
        if terms == b"\x00" * 32:
            self._send(self.c.marketplace.functions.slashStake(prov, amount, jkey, okey, reason),
                       self.operator, job_id)
            terms, taken, to = self.client.call(self.c.escrow.functions.slashOps(okey))
        elif terms != keccak(encode(["address", "uint256", "bytes32"], [prov, amount, jkey])):
            raise IdempotencyConflictError(f"op {op_id} slashed on other terms", op_id=op_id)
        return Slash(provider, taken, self._name_of(to), job_id)

    def _stake_op_done(self, address: str, okey: bytes, kind: int, amount: int, op_id: str) -> bool:
        seen_kind, seen_amount = self.client.call(self.c.escrow.functions.stakeOps(address, okey))
        if seen_kind == 0:
            return False
        if (seen_kind, seen_amount) != (kind, amount):
            raise IdempotencyConflictError(f"op {op_id} was used with other terms", op_id=op_id)
        return True

    def _name_of(self, address: str) -> str:
        if Web3.to_checksum_address(address) == Web3.to_checksum_address(self.c.deployment.platform):
            return self.platform_account
        label = self.client.call(self.c.token.functions.accountLabel(address))
        return label or f"{RAW_PREFIX}{Web3.to_checksum_address(address)}"

    def _approve(self, signer: Signer, amount: int) -> None:
        if signer.address in self._approved:
            return
        allowance = self.client.call(self.c.token.functions.allowance(signer.address, self.c.marketplace.address))
        if allowance < amount:
            self._send(self.c.token.functions.approve(self.c.marketplace.address, MAX_TOKEN), signer)
        self._approved.add(signer.address)

    # -- accounts --------------------------------------------------------------------------
    def address_of(self, account: str) -> str:
        return self._address(account)

    def _address(self, account: str) -> str:
        if account.startswith(RAW_PREFIX):
            # An unlabelled holder listed by accounts(): read as the address it names.
            return Web3.to_checksum_address(account[len(RAW_PREFIX):])
        return self.keys.address(account)

    def ensure_account(self, account: str) -> str:
        """Label a custodial address on chain the first time it is used (idempotent)."""
        addr = self._address(account)
        if account in self._labelled or account.startswith(RAW_PREFIX):
            return addr
        label = self.client.call(self.c.token.functions.accountLabel(addr))
        if not label:
            try:
                self._send(self.c.token.functions.setLabel(addr, account), self.operator)
            except ChainRevertError as exc:
                if exc.reason != "Labelled":  # a concurrent caller labelled it first
                    raise
        self._labelled.add(account)
        return addr

    def sender(self, account: str) -> Signer:
        """The custodial signer of ``account``, labelled and holding gas."""
        self.ensure_account(account)
        signer = self.keys.signer(account)
        with self._guard:
            if signer.address in self._funded:
                return signer
        if self.client.eth_balance(signer.address) < GAS_LOW_WATER_WEI:
            self.client.send_value(self.operator, signer.address, GAS_FUNDING_WEI)
        with self._guard:
            self._funded.add(signer.address)
        return signer

    # -- internals -------------------------------------------------------------------------
    def _send(self, fn: Any, signer: Signer, job_id: str | None = None) -> None:
        try:
            self.client.transact(fn, signer)
        except ChainRevertError as exc:
            raise _typed(exc, job_id) from None

    def _existing(self, job_id: str) -> dict[str, Any]:
        rec = self.escrow_record(job_id)
        if rec["state"] == NONE:
            raise EscrowStateError(f"no escrow for job {job_id}", job_id=job_id)
        return rec

    def _settlement(self, job_id: str, rec: dict[str, Any] | None = None) -> Settlement:
        rec = rec or self.escrow_record(job_id)
        return Settlement(job_id, rec["settle_provider"], rec["settle_platform"], rec["settle_refund"],
                          rec["remaining"])

    @staticmethod
    def _check_terms(seen: bytes, to: str, amount: int, op_id: str) -> None:
        if seen != transfer_terms(to, amount):
            raise IdempotencyConflictError(f"op {op_id} was used with other terms", op_id=op_id)


def _key(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValidationError(f"{what} must be a non-empty string of at most 64 characters")
    return value
