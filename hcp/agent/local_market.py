"""``MarketplacePort`` in process, over ``MarketplaceService`` (the operator's own fleet)."""

from __future__ import annotations

from hcp.agent.messages import JobInfo, OfferLimits
from hcp.auth.tokens import Principal, Role
from hcp.errors import JobNotFoundError
from hcp.marketplace.jobs import JobStatus
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.views import JobView

OPEN = (JobStatus.CREATED, JobStatus.ACCEPTED, JobStatus.RUNNING)


def job_info(v: JobView) -> JobInfo:
    return JobInfo(id=v.id, offer_id=v.offer_id, renter=v.renter, provider=v.provider,
                   image_cid=v.image_cid, status=v.status, estimated_seconds=v.estimated_seconds,
                   created_at=v.created_at, started_at=v.started_at, ended_at=v.ended_at,
                   final_cost=v.final_cost)


class LocalMarketplace:
    def __init__(self, service: MarketplaceService, provider: str) -> None:
        self.service = service
        self.who = Principal(provider, Role.PROVIDER)

    def open_jobs(self) -> list[JobInfo]:
        out: list[JobInfo] = []
        for status in OPEN:
            out.extend(job_info(v) for v in self.service.list_jobs(self.who, status, limit=500)
                       if v.provider == self.who.subject)
        return out

    def job(self, job_id: str) -> JobInfo | None:
        try:
            return job_info(self.service.get_job(self.who, job_id))
        except JobNotFoundError:
            return None

    def offer(self, offer_id: str) -> OfferLimits:
        o = self.service.get_offer(offer_id)
        return OfferLimits(o.id, o.gpu_model, o.vcpu, o.memory_gb, o.storage_gb)

    def accept(self, job_id: str) -> JobInfo:
        return job_info(self.service.accept(self.who, job_id))

    def start(self, job_id: str) -> JobInfo:
        return job_info(self.service.start(self.who, job_id))

    def complete(self, job_id: str, usage_seconds: int) -> JobInfo:
        return job_info(self.service.complete(self.who, job_id, usage_seconds))

    def cancel(self, job_id: str) -> JobInfo:
        return job_info(self.service.cancel(self.who, job_id))
