"""Fold indexed events into ``chain_jobs`` rows (the API's fast read of jobs and escrows)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from hcp.marketplace.chain.models import ChainEvent, ChainJob

_STATUS = {
    "JobAccepted": "ACCEPTED",
    "JobStarted": "RUNNING",
    "JobCompleted": "COMPLETED",
    "JobCancelled": "CANCELLED",
    "JobDisputed": "DISPUTED",
}


def apply_event(s: Session, e: ChainEvent) -> None:
    """Apply one event; events without a job, or for jobs not seen, change nothing."""
    handler = _HANDLERS.get(e.event)
    if handler is not None and e.job_key:
        handler(s, e)


def _created(s: Session, e: ChainEvent) -> None:
    a = e.args
    s.merge(ChainJob(job_key=e.job_key, kind="job", user=a["user"], provider=a["provider"],
                     resource_id=a["resourceId"], image_cid=a["imageCID"], status="CREATED",
                     locked=int(a["maxCost"]), paid_provider=0, paid_platform=0, refunded=0,
                     final_cost=None, start_time=None, outcome=None, updated_block=e.block_number))


def _opened(s: Session, e: ChainEvent) -> None:
    a = e.args
    s.merge(ChainJob(job_key=e.job_key, kind="escrow", user=a["user"], provider=a["provider"],
                     resource_id=None, image_cid=None, status="LOCKED", locked=int(a["amount"]),
                     paid_provider=0, paid_platform=0, refunded=0, final_cost=None, start_time=None,
                     outcome=None, updated_block=e.block_number))


def _job(s: Session, e: ChainEvent) -> ChainJob | None:
    row = s.get(ChainJob, e.job_key)
    if row is not None:
        row.updated_block = e.block_number
    return row


def _status(s: Session, e: ChainEvent) -> None:
    row = _job(s, e)
    if row is None:
        return
    row.status = _STATUS[e.event]
    if e.event == "JobStarted":
        row.start_time = int(e.args["startTime"])
    if e.event == "JobCompleted":
        row.final_cost = int(e.args["finalCost"])


def _released(s: Session, e: ChainEvent) -> None:
    row = _job(s, e)
    if row is not None:
        row.paid_provider += int(e.args["providerAmount"])
        row.paid_platform += int(e.args["platformFee"])


def _refunded(s: Session, e: ChainEvent) -> None:
    row = _job(s, e)
    if row is not None:
        row.refunded += int(e.args["amount"])


def _settled(s: Session, e: ChainEvent) -> None:
    row = _job(s, e)
    if row is not None and row.kind == "escrow":
        row.status = {2: "RELEASED", 3: "REFUNDED"}.get(int(e.args["state"]), row.status)
        row.final_cost = row.paid_provider + row.paid_platform


def _resolved(s: Session, e: ChainEvent) -> None:
    row = _job(s, e)
    if row is not None:
        row.outcome = int(e.args["outcome"])


_HANDLERS: dict[str, Callable[[Session, ChainEvent], None]] = {
    "JobCreated": _created,
    "EscrowOpened": _opened,
    "FundsReleased": _released,
    "Refunded": _refunded,
    "EscrowSettled": _settled,
    "DisputeResolved": _resolved,
    **{name: _status for name in _STATUS},
}
