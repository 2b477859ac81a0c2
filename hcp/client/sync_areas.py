"""``client.notary`` and ``client.marketplace`` of the synchronous client."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hcp.client import marketplace as mk
from hcp.client import notary as nt
from hcp.client.marketplace import SortOrder
from hcp.client.models import Page
from hcp.client.transport import SyncTransport
from hcp.marketplace.jobs import DisputeOutcome, JobStatus
from hcp.notary.miner.claim import SignedClaim


class NotaryApi:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def task(self) -> nt.NotaryTask:
        return self._t.run(nt.task())

    def dataset(self, dataset_hash: str) -> bytes:
        """The task's dataset, checked against its hash."""
        return self._t.run(nt.dataset(dataset_hash))

    def submit_claim(self, payload_json: str, signature: str, artifact: bytes) -> nt.ClaimVerdict:
        """A signed claim (``hcp.notary.miner.claim.SignedClaim``'s ``payload_json``, ``signature``,
        ``artifact``); refusals raise, e.g. ``VerificationFailedError``."""
        return self._t.run(nt.submit_claim(payload_json, signature, artifact))

    def submit_signed(self, claim: SignedClaim) -> nt.ClaimVerdict:
        """A claim as ``hcp.notary.miner.claim.sign_claim`` built it."""
        return self._t.run(nt.submit_claim(claim.payload_json, claim.signature, claim.artifact))

    def claim(self, submission_id: str) -> nt.Claim:
        return self._t.run(nt.claim(submission_id))

    # admin
    def register_miner(self, miner_id: str, public_key_hex: str, stake: int) -> nt.Miner:
        return self._t.run(nt.register_miner(miner_id, public_key_hex, stake))

    def list_miners(self) -> list[nt.Miner]:
        return self._t.run(nt.list_miners())

    def miner(self, miner_id: str) -> nt.Miner:
        return self._t.run(nt.miner(miner_id))

    def revoke_miner(self, miner_id: str) -> nt.Miner:
        return self._t.run(nt.revoke_miner(miner_id))

    def upload_dataset(self, data: bytes) -> nt.DatasetRef:
        return self._t.run(nt.upload_dataset(data))

    def create_task(self, spec: nt.NewTask | Mapping[str, Any] | None = None, /,
                    **fields: Any) -> nt.TaskRecord:
        return self._t.run(nt.create_task(spec if spec is not None else fields))

    def list_tasks(self) -> list[nt.TaskRecord]:
        return self._t.run(nt.list_tasks())

    def close_task(self, task_id: str) -> nt.TaskRecord:
        return self._t.run(nt.close_task(task_id))

    def list_claims(self, *, miner_id: str | None = None, limit: int = 100) -> list[nt.Claim]:
        return self._t.run(nt.list_claims(miner_id, limit))


class MarketplaceApi:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    # wallet login
    def challenge(self, address: str, role: str = "renter") -> mk.WalletChallenge:
        return self._t.run(mk.challenge(address, role))

    def login(self, address: str, nonce: str, signature: str, *, use: bool = True) -> mk.WalletSession:
        """Exchange a signed challenge for a token; ``use`` makes this client send it from now on."""
        session = self._t.run(mk.login(address, nonce, signature))
        if use:
            self._t.token = session.token
        return session

    # offers
    def create_offer(self, *, gpu_model: str, vcpu: int, memory_gb: int, storage_gb: int,
                     price_per_hour: int, location: str, available: bool = True) -> mk.Offer:
        return self._t.run(mk.create_offer(gpu_model, vcpu, memory_gb, storage_gb, price_per_hour,
                                           location, available))

    def update_offer(self, offer_id: str, *, available: bool | None = None,
                     price_per_hour: int | None = None) -> mk.Offer:
        return self._t.run(mk.update_offer(offer_id, available, price_per_hour))

    def get_offer(self, offer_id: str) -> mk.Offer:
        return self._t.run(mk.get_offer(offer_id))

    def search_offers(self, *, gpu_model: str | None = None, min_price: int | None = None,
                      max_price: int | None = None, min_reputation: int | None = None,
                      location: str | None = None, available_only: bool = True,
                      sort: SortOrder | str = SortOrder.PRICE_ASC, limit: int = 50,
                      cursor: str | None = None) -> Page[mk.Offer]:
        return self._t.run(mk.search_offers(gpu_model, min_price, max_price, min_reputation,
                                            location, available_only, sort, limit, cursor))

    def iter_offers(self, *, page_size: int = 100, **query: Any) -> Iterator[mk.Offer]:
        """Every matching offer, page after page (``query``: search_offers' filters)."""
        cursor: str | None = None
        while True:
            page = self.search_offers(limit=page_size, cursor=cursor, **query)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # jobs
    def create_job(self, offer_id: str, image_cid: str, estimated_seconds: int) -> mk.Job:
        return self._t.run(mk.create_job(offer_id, image_cid, estimated_seconds))

    def list_jobs(self, *, status: JobStatus | str | None = None, limit: int = 100) -> list[mk.Job]:
        return self._t.run(mk.list_jobs(status, limit))

    def get_job(self, job_id: str) -> mk.Job:
        return self._t.run(mk.get_job(job_id))

    def accept_job(self, job_id: str) -> mk.Job:
        return self._t.run(mk.job_step(job_id, "accept"))

    def start_job(self, job_id: str) -> mk.Job:
        return self._t.run(mk.job_step(job_id, "start"))

    def complete_job(self, job_id: str, *, usage_seconds: int | None = None) -> mk.Job:
        return self._t.run(mk.complete_job(job_id, usage_seconds))

    def cancel_job(self, job_id: str) -> mk.Job:
        return self._t.run(mk.job_step(job_id, "cancel"))

    def dispute_job(self, job_id: str, reason: str) -> mk.Job:
        return self._t.run(mk.dispute_job(job_id, reason))

    def resolve_job(self, job_id: str, outcome: DisputeOutcome | str) -> mk.Job:
        return self._t.run(mk.resolve_job(job_id, outcome))

    # reputation
    def reputation(self, provider_id: str) -> mk.Reputation:
        return self._t.run(mk.reputation(provider_id))

    def report_uptime(self, provider_id: str, up_seconds: int, expected_seconds: int) -> mk.Reputation:
        return self._t.run(mk.report(provider_id, "uptime", {"up_seconds": up_seconds,
                                                             "expected_seconds": expected_seconds}))

    def penalize(self, provider_id: str, points: int) -> mk.Reputation:
        return self._t.run(mk.report(provider_id, "penalty", {"points": points}))

    def reward(self, provider_id: str, points: int) -> mk.Reputation:
        return self._t.run(mk.report(provider_id, "reward", {"points": points}))

    # balances
    def balance(self, account: str | None = None) -> mk.Balance:
        """Your own balance, or (admins) any account's."""
        return self._t.run(mk.balance(account))

    def ledger(self) -> mk.LedgerView:
        return self._t.run(mk.ledger())

    def mint(self, account: str, amount: int, *, op_id: str | None = None) -> mk.Balance:
        return self._t.run(mk.mint(account, amount, op_id))
