"""Bringing one accepted job's container up: pull the image (verified), create the container,
start it, see it running, then start the job in the marketplace (the billing clock starts).

Runs on a worker thread per job. A failure the renter's money should come back for is a
``LaunchFailure`` (its reason is recorded and shown on the instance); any other error is
transient and the launch is tried again on a later step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hcp.agent.capture import LogCapture
from hcp.agent.messages import (
    ContainerStatus,
    InstanceSpec,
    JobInfo,
    Phase,
    Reason,
    RunRecord,
    Slot,
)
from hcp.agent.metrics import MetricSampler
from hcp.agent.spec import build_spec
from hcp.errors import (
    BlockNotFoundError,
    HcpError,
    InvalidCidError,
    InvalidImageError,
    JobTransitionError,
    PeerFetchError,
    TamperedImageError,
    ValidationError,
)
from hcp.marketplace.jobs import JobStatus

log = logging.getLogger(__name__)


class LaunchFailure(Exception):
    """The job cannot run: refund it, record why."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class LaunchAborted(Exception):
    """The job left ACCEPTED while its container was being brought up (the renter cancelled)."""


@dataclass
class Run:
    """The agent's live view of one job it holds a GPU for."""

    job: JobInfo
    slot: Slot
    record: RunRecord
    container_id: str | None = None
    capture: LogCapture | None = None
    sampler: MetricSampler | None = None
    billing: bool = False
    launching: Any = None  # the Future of the launch while it runs
    attempts: int = 0
    abort: tuple[Reason, str] | None = None  # a preemption asked for while launching
    stop: tuple[Reason, str] | None = None   # why the agent itself stopped the container
    health: str | None = None
    retry_at: datetime | None = None  # a transient launch failure: try again then


def image_failure(exc: HcpError, cid: str) -> LaunchFailure | None:
    """The launch failure an image error means, or None when retrying may help."""
    if isinstance(exc, TamperedImageError):
        return LaunchFailure(Reason.IMAGE_TAMPERED, exc.detail)
    if isinstance(exc, InvalidImageError | InvalidCidError | ValidationError):
        return LaunchFailure(Reason.IMAGE_INVALID, f"image {cid} is not a runnable hcp image: "
                                                   f"{exc.detail}")
    if isinstance(exc, PeerFetchError | BlockNotFoundError):
        return LaunchFailure(Reason.IMAGE_UNAVAILABLE, f"image {cid} could not be fetched: "
                                                       f"{exc.detail}")
    return None


def prepare(agent: Any, run: Run, sleep: Callable[[float], None] = time.sleep) -> None:
    """Bring ``run``'s container up and start billing (``agent`` is the ProviderAgent)."""
    job, slot = run.job, run.slot
    t0 = time.monotonic()
    try:
        image = agent.images.ensure(job.image_cid, job.id)
    except HcpError as exc:
        agent.pulled("verify_failed" if isinstance(exc, TamperedImageError) else "failed",
                     time.monotonic() - t0)
        failure = image_failure(exc, job.image_cid)
        if failure is not None and (failure.reason is not Reason.IMAGE_UNAVAILABLE
                                    or run.attempts >= agent.max_attempts):
            raise failure from exc
        raise
    agent.pulled("ok", time.monotonic() - t0)
    offer = agent.offer(job.offer_id)
    instance = agent.runs.instance_spec(job.id) or InstanceSpec()
    spec = build_spec(job, offer, instance, slot, image, agent.identity,
                      agent.containers.capabilities(), agent.settings)
    agent.save(run, phase=Phase.STARTING, image_id=image.image_id,
               simulated_gpu=spec.simulated_gpu, network=instance.network,
               detail="image cached" if image.cached else f"image loaded ({image.fetched_blocks} "
                                                           "blocks fetched)")
    try:
        cid = agent.containers.create(spec)
    except (InvalidImageError, ValidationError) as exc:
        raise LaunchFailure(Reason.START_FAILED, f"the container could not be created: {exc.detail}") from exc
    run.container_id = cid
    agent.save(run, container_id=cid)
    if agent.containers.inspect(cid).status is ContainerStatus.CREATED:
        try:
            agent.containers.start(cid)
        except HcpError:
            raise
        except Exception as exc:  # the Engine refused this container (a bad command...)
            raise LaunchFailure(Reason.START_FAILED, f"the container did not start: {exc}"[:900]) from exc
    agent.attach(run, offer.vcpu)
    state = _wait_running(agent, cid, sleep)
    if state.status is ContainerStatus.EXITED and state.exit_code not in (0, None):
        raise LaunchFailure(Reason.START_FAILED,
                            f"the container exited with code {state.exit_code} as it started"
                            + (" (out of memory)" if state.oom_killed else ""))
    if run.abort is not None:
        raise LaunchFailure(*run.abort)
    try:
        run.job = agent.market.start(job.id)
    except JobTransitionError as exc:
        now = agent.market.job(job.id)
        if now is None or now.status is not JobStatus.RUNNING:
            raise LaunchAborted(job.id) from exc
        run.job = now  # our own earlier start, whose answer was lost
    run.billing = True
    agent.save(run, phase=Phase.RUNNING, container_started_at=state.started_at)
    log.info("job %s running in %s on %s (billing started)", job.id, cid[:12], slot.gpu_id)


def _wait_running(agent: Any, cid: str, sleep: Callable[[float], None]):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + agent.settings.start_timeout_seconds
    pause = 0.01
    while True:
        state = agent.containers.inspect(cid)
        if state.status in (ContainerStatus.RUNNING, ContainerStatus.EXITED):
            return state
        if state.status is ContainerStatus.MISSING:
            raise LaunchFailure(Reason.START_FAILED, "the container vanished as it started")
        if time.monotonic() >= deadline:
            raise LaunchFailure(Reason.START_FAILED, "the container did not start in time")
        sleep(pause)
        pause = min(0.2, pause * 2)
