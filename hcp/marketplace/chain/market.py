"""The seed's job lifecycle on the Marketplace contract, with typed results.

createJob -> acceptJob -> startJob -> completeJob (price x min(run time, estimate, reported
usage) / 3600, 98/2 split, refund of the rest) or stopJob by either party, cancelJob before the
start, disputeJob and the oracle's resolveDispute (provider fault: refund + penalty; user fault:
provider paid; inconclusive: 50/50). These are the SQL marketplace's rules (``hcp.marketplace
.service``) to the unit: the same job settles to the same balances and score on both
(tests/integration/chain/test_parity.py). Accounts are names signed for by the escrow backend's
custodial keyring.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from eth_abi import encode
from eth_utils import keccak

from hcp.errors import (
    ChainRevertError,
    InsufficientStakeError,
    JobTransitionError,
    NotFoundError,
    ValidationError,
)
from hcp.marketplace.chain.escrow_backend import ChainEscrowBackend
from hcp.marketplace.chain.escrow_backend import _typed as escrow_typed
from hcp.marketplace.chain.ids import job_key

log = logging.getLogger(__name__)


NO_USAGE = 2**256 - 1  # completeJob's "no usage reported": bill the clock


class JobStatus(enum.IntEnum):
    NONE = 0
    CREATED = 1
    ACCEPTED = 2
    RUNNING = 3
    COMPLETED = 4
    DISPUTED = 5
    CANCELLED = 6


class Outcome(enum.IntEnum):
    PROVIDER_FAULT = 1
    USER_FAULT = 2
    INCONCLUSIVE = 3


@dataclass(frozen=True)
class ChainJob:
    job_id: str
    key: str
    user: str
    provider: str
    resource_id: str
    image_cid: str
    estimated_duration: int
    price_per_hour: int
    max_cost: int
    start_time: int
    end_time: int
    status: JobStatus
    final_cost: int
    outcome: int


@dataclass(frozen=True)
class ChainResource:
    resource_id: str
    provider: str
    gpu_model: str
    vcpu: int
    memory_gb: int
    storage_gb: int
    price_per_hour: int
    available: bool
    total_uptime: int
    reputation: int


class ChainMarketplace:
    def __init__(self, escrow: ChainEscrowBackend) -> None:
        self.escrow = escrow
        self.client = escrow.client
        self.c = escrow.c

    # -- registry ----------------------------------------------------------------------------
    def register_resource(self, provider: str, gpu_model: str, vcpu: int, memory_gb: int,
                          storage_gb: int, price_per_hour: int) -> str:
        signer = self.escrow.sender(provider)
        nonce = self.client.call(self.c.registry.functions.registrationNonce(signer.address))
        self._send(self.c.registry.functions.registerResource(gpu_model, vcpu, memory_gb, storage_gb,
                                                              price_per_hour), provider)
        return "0x" + keccak(encode(["address", "uint256"], [signer.address, nonce])).hex()

    def set_availability(self, provider: str, resource_id: str, available: bool) -> None:
        self._send(self.c.registry.functions.updateAvailability(bytes.fromhex(resource_id[2:]), available),
                   provider)

    def set_price(self, provider: str, resource_id: str, price_per_hour: int) -> None:
        self._send(self.c.registry.functions.updatePricing(bytes.fromhex(resource_id[2:]), price_per_hour),
                   provider)

    def resource(self, resource_id: str) -> ChainResource:
        r = self.client.call(self.c.registry.functions.getResource(bytes.fromhex(resource_id[2:])))
        if int(r[0], 16) == 0:
            raise NotFoundError(f"no resource {resource_id}", resource_id=resource_id)
        return ChainResource(resource_id, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])

    def reputation(self, provider: str) -> int:
        return self.client.call(self.c.reputation.functions.getReputation(self.escrow.address_of(provider)))

    def report_metrics(self, provider: str, uptime_permille: int, response_permille: int) -> None:
        """The oracle's periodic report (uptime and response terms of the score)."""
        fn = self.c.reputation.functions.updateReputation(self.escrow.address_of(provider),
                                                          uptime_permille, response_permille)
        self._send_operator(fn)

    def set_min_stake(self, amount: int) -> None:
        """The bonded stake a provider needs for new jobs (owner: the operator)."""
        self._send_operator(self.c.marketplace.functions.setMinStake(amount))

    def min_stake(self) -> int:
        return self.client.call(self.c.marketplace.functions.minStake())

    # -- jobs ------------------------------------------------------------------------------
    def create_job(self, job_id: str, renter: str, resource_id: str, image_cid: str,
                   estimated_seconds: int) -> ChainJob:
        """Lock price x estimate in escrow. Idempotent by ``job_id``."""
        existing = self.job(job_id, missing_ok=True)
        if existing is not None:
            return existing
        signer = self.escrow.sender(renter)
        self.escrow.ensure_account(self.escrow.platform_account)
        res = self.resource(resource_id)
        max_cost = res.price_per_hour * estimated_seconds // 3600
        allowance = self.client.call(self.c.token.functions.allowance(signer.address, self.c.marketplace.address))
        if allowance < max_cost:
            self._send(self.c.token.functions.approve(self.c.marketplace.address, 2**256 - 1), renter)
        self._send(self.c.marketplace.functions.createJob(job_key(job_id), bytes.fromhex(resource_id[2:]),
                                                          image_cid, estimated_seconds), renter)
        return self.job(job_id)

    def accept(self, job_id: str, provider: str) -> None:
        self._step(job_id, JobStatus.ACCEPTED, "acceptJob", provider)

    def start(self, job_id: str, provider: str) -> None:
        self._step(job_id, JobStatus.RUNNING, "startJob", provider)

    def complete(self, job_id: str, provider: str, usage_seconds: int | None = None) -> ChainJob:
        """Bill min(run time, estimate, ``usage_seconds``): the provider may bill less, never more."""
        if usage_seconds is not None and (isinstance(usage_seconds, bool) or not isinstance(usage_seconds, int)
                                          or not 0 <= usage_seconds < NO_USAGE):
            raise ValidationError("usage_seconds must be a non-negative integer")
        usage = NO_USAGE if usage_seconds is None else usage_seconds
        self._step(job_id, JobStatus.COMPLETED, "completeJob", provider, usage)
        return self.job(job_id)

    def stop(self, job_id: str, by: str) -> ChainJob:
        """Either party ends the rental now: before the start everything is refunded (cancel),
        while it runs the time so far is paid and the rest refunded."""
        job = self.job(job_id)
        if job.status in (JobStatus.CREATED, JobStatus.ACCEPTED):
            self.cancel(job_id, by)
        elif job.status != JobStatus.COMPLETED:
            self._step(job_id, JobStatus.COMPLETED, "stopJob", by)
        return self.job(job_id)

    def cancel(self, job_id: str, by: str) -> None:
        self._step(job_id, JobStatus.CANCELLED, "cancelJob", by)

    def dispute(self, job_id: str, by: str, reason: str) -> None:
        job = self.job(job_id)
        if job.status == JobStatus.DISPUTED:
            return
        self._send(self.c.marketplace.functions.disputeJob(job_key(job_id), reason), by, job_id)

    def resolve(self, job_id: str, outcome: Outcome) -> ChainJob:
        job = self.job(job_id)
        if job.status == JobStatus.COMPLETED and job.outcome == int(outcome):
            return job
        self._send_operator(self.c.marketplace.functions.resolveDispute(job_key(job_id), int(outcome)), job_id)
        return self.job(job_id)

    def job(self, job_id: str, missing_ok: bool = False) -> ChainJob | None:  # type: ignore[return]
        j = self.client.call(self.c.marketplace.functions.getJob(job_key(job_id)))
        status = JobStatus(j[10])
        if status == JobStatus.NONE:
            if missing_ok:
                return None
            raise NotFoundError(f"no job {job_id} on chain", job_id=job_id)
        return ChainJob(job_id, "0x" + j[0].hex(), j[1], j[2], "0x" + j[3].hex(), j[4], j[5], j[6], j[7],
                        j[8], j[9], status, j[11], j[12])

    # -- internals -------------------------------------------------------------------------
    def _step(self, job_id: str, target: JobStatus, fn_name: str, by: str, *args: int) -> None:
        job = self.job(job_id)
        if job.status == target:
            return  # a retried step that already happened
        fn = getattr(self.c.marketplace.functions, fn_name)(job_key(job_id), *args)
        self._send(fn, by, job_id)

    def _send(self, fn, account: str, job_id: str | None = None) -> None:  # type: ignore[no-untyped-def]
        try:
            self.client.transact(fn, self.escrow.sender(account))
        except ChainRevertError as exc:
            raise _typed(exc, job_id) from None

    def _send_operator(self, fn, job_id: str | None = None) -> None:  # type: ignore[no-untyped-def]
        try:
            self.client.transact(fn, self.escrow.operator)
        except ChainRevertError as exc:
            raise _typed(exc, job_id) from None


def _typed(exc: ChainRevertError, job_id: str | None) -> Exception:
    ctx = {"job_id": job_id} if job_id else {}
    if exc.reason == "BadJobState":
        return JobTransitionError(exc.detail, **ctx)
    if exc.reason == "InsufficientStake":
        return InsufficientStakeError("the provider's bonded stake is below the minimum", **ctx)
    if exc.reason in ("BadImageCID", "ZeroDuration", "ZeroCost", "ZeroPrice", "BadModel", "SelfRental"):
        return ValidationError(exc.detail, reason=exc.reason, **ctx)
    return escrow_typed(exc, job_id)
