"""``ProviderAgent``: watches this provider's jobs on its GPUs and runs them.

A plain class: ``step()`` does one pass (accept what fits, launch, supervise, settle),
``run()`` loops it, ``reconcile()`` rebuilds its view after a crash from the containers'
labels and the job records. Every port is passed in (see ``ports.py``); the shells (the
lead's Ray actor, the ``hcp agent`` daemon) only loop and wire.

Money: the marketplace decides it; the agent calls ``start`` when the container runs,
``complete`` with the container's real run time when it ends, ``cancel`` (full refund) when
it never ran. Each is a state transition of the job, so no job is completed or paid twice,
however often a crashed agent retries.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hcp.agent.capture import LogCapture
from hcp.agent.launch import LaunchAborted, LaunchFailure, Run, prepare
from hcp.agent.messages import (
    LIVE_STATUSES,
    ContainerState,
    ContainerStatus,
    JobInfo,
    OfferLimits,
    Phase,
    Reason,
    RunRecord,
    Slot,
)
from hcp.agent.metrics import MetricSampler, telemetry_for
from hcp.agent.ports import (
    CachePort,
    ContainerPort,
    GpuLease,
    ImagePort,
    MarketplacePort,
    RunStore,
)
from hcp.agent.settings import AgentSettings
from hcp.agent.spec import LABEL_GPU, LABEL_JOB, Identity
from hcp.clock import Clock, SystemClock
from hcp.errors import ContainerEngineError, GpuBusyError, HcpError, JobTransitionError
from hcp.fleet.telemetry import TelemetrySource
from hcp.marketplace.jobs import JobStatus
from hcp.observability.agent import record_containers, record_pull
from hcp.observability.sink import MetricsSink

log = logging.getLogger(__name__)

_ENDED_BY = {JobStatus.COMPLETED: Reason.STOPPED_BY_RENTER, JobStatus.CANCELLED: Reason.CANCELLED,
             JobStatus.DISPUTED: Reason.DISPUTED, JobStatus.RESOLVED: Reason.DISPUTED}

_FAILURES = frozenset({Reason.IMAGE_TAMPERED, Reason.IMAGE_UNAVAILABLE, Reason.IMAGE_INVALID,
                       Reason.START_FAILED})
_RANK = {JobStatus.CREATED: 0, JobStatus.ACCEPTED: 1, JobStatus.RUNNING: 2}
_RANK.update({s: 3 for s in JobStatus if s not in _RANK})


@dataclass
class StepReport:
    accepted: list[str] = field(default_factory=list)
    launched: list[str] = field(default_factory=list)
    settled: list[tuple[str, Reason]] = field(default_factory=list)
    failed: list[tuple[str, Reason]] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # containers of no live job
    errors: list[str] = field(default_factory=list)


class ProviderAgent:
    max_attempts = 5

    def __init__(self, identity: Identity, slots: Sequence[Slot], market: MarketplacePort,
                 containers: ContainerPort, images: ImagePort, runs: RunStore, gpus: GpuLease,
                 settings: AgentSettings, clock: Clock | None = None,
                 executor: Executor | None = None,
                 telemetry: Callable[[Slot, bool], TelemetrySource] | None = None,
                 cache: CachePort | None = None, metrics: MetricsSink | None = None) -> None:
        self.identity = identity
        self.slots = {s.offer_id: s for s in slots}
        self.market, self.containers, self.images, self.runs, self.gpus = (
            market, containers, images, runs, gpus)
        self.settings = settings
        self.clock = clock or SystemClock()
        self._executor = executor or ThreadPoolExecutor(settings.launch_workers,
                                                        thread_name_prefix="hcp-launch")
        self._telemetry = telemetry or (lambda slot, simulated: telemetry_for(
            slot.gpu_model or "H100", None if simulated else slot.device_index))
        self.cache = cache  # this node's image cache policy, run between steps
        self.metrics = metrics  # the catalogue's agent series (hcp.observability.agent)
        self._runs: dict[str, Run] = {}
        self._offers: dict[str, OfferLimits] = {}
        self._lock = threading.RLock()
        self._reconciled = False

    # -- the loop -------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
            except HcpError as exc:
                log.warning("agent step failed: %s: %s", exc.code, exc.detail)
            self.cache_step()
            stop.wait(self.settings.poll_seconds)

    def pulled(self, result: str, seconds: float) -> None:
        """A job's image pull ended (``launch.prepare``): count it and time it."""
        if self.metrics is not None:
            try:
                record_pull(self.metrics, self.identity.agent_id, result, seconds)
            except Exception:  # noqa: BLE001 -- metrics never fail a launch
                log.exception("agent metrics failed")

    def _record_containers(self) -> None:
        if self.metrics is None:
            return
        counts = {"running": 0, "created": 0}
        for run in self._runs.values():
            counts["running" if run.billing and run.container_id else "created"] += 1
        try:
            record_containers(self.metrics, self.identity.agent_id, counts)
        except Exception:  # noqa: BLE001 -- metrics never stop the agent
            log.exception("agent metrics failed")

    def cache_step(self, force: bool = False) -> Any:
        """Run the image cache's period when it is due (every 5 minutes by default): pin the
        marketplace's most-run images here, let go of what no job ran for a month. A failed
        period is logged and tried again when next due; it never stops the agent."""
        if self.cache is None:
            return None
        try:
            return self.cache.step(force)
        except Exception:  # noqa: BLE001 -- the cache is an optimisation; jobs come first
            log.exception("image cache period failed")
            return None

    def step(self) -> StepReport:
        report = StepReport()
        with self._lock:
            try:
                if not self._reconciled:
                    self._reconcile(report)
                self._collect(report)
                for run in list(self._runs.values()):
                    if run.retry_at is not None and self.clock.now() >= run.retry_at:
                        run.retry_at = None
                        self._launch(run, report)
                jobs = {j.id: j for j in self.market.open_jobs() if j.offer_id in self.slots}
                for job in sorted(jobs.values(), key=lambda j: (j.created_at, j.id)):
                    if job.id not in self._runs:
                        self._take(job, report)
                self._collect(report)  # launches that already ended (fast failures)
                for run in list(self._runs.values()):
                    if run.retry_at is None and run.launching is None:
                        self._supervise(run, jobs.get(run.job.id), report)
                self._record_containers()
            except ContainerEngineError as exc:
                # After the Engine comes back, containers may have stopped or vanished.
                self._reconciled = False
                report.errors.append(exc.code)
                raise
        return report

    def reconcile(self) -> StepReport:
        report = StepReport()
        with self._lock:
            self._reconcile(report)
        return report

    def preempt(self, gpu_id: str, detail: str) -> bool:
        """An explicit, recorded preemption: stop the job on ``gpu_id``; it is paid for the time
        it ran and the rest refunded (a launch in progress is refunded in full)."""
        with self._lock:
            self._collect(StepReport())  # a launch that just finished is a running job now
            for run in list(self._runs.values()):
                if run.slot.gpu_id != gpu_id:
                    continue
                if run.launching is not None:
                    run.abort = (Reason.PREEMPTED, detail)  # _collect honours it if it got past
                    return True
                run.stop = (Reason.PREEMPTED, detail)
                if run.container_id:
                    self.containers.stop(run.container_id, self.settings.stop_grace_seconds)
                self._supervise(run, None, StepReport())
                return True
        return False

    def close(self, wait: bool = False) -> None:
        """Stop capturing (containers keep running; a new agent adopts them). ``wait``: also
        wait for a launch in flight to finish (it is never cut off half-way)."""
        with self._lock:
            for run in self._runs.values():
                self._detach(run)
        self._executor.shutdown(wait=wait, cancel_futures=True)

    def active(self) -> dict[str, str]:
        """job id -> GPU id of the jobs this agent holds now."""
        with self._lock:
            return {j: r.slot.gpu_id for j, r in self._runs.items()}

    def activity(self) -> tuple[list[str], list[int]]:
        """What a heartbeat reports: the jobs running now and each slot's GPU utilisation in
        basis points (from its container's last metrics sample; 0 when idle)."""
        with self._lock:
            runs = list(self._runs.values())
        jobs = sorted(r.job.id for r in runs if r.billing)
        util = {s: 0 for s in self.slots}
        for r in runs:
            last = r.sampler.last if r.sampler is not None else None
            if last is not None and r.slot.offer_id in util:
                pct = float(last.gpu.get("utilization_pct", 0.0) or 0.0)
                util[r.slot.offer_id] = max(0, min(10_000, round(pct * 100)))
        return jobs, [util[s] for s in sorted(util)]

    def repair_images(self) -> int:
        """Fetch again what the store lost of the images its running jobs use; how many
        images needed blocks."""
        with self._lock:
            held = [(r.job.image_cid, r.job.id) for r in self._runs.values()]
        repair = getattr(self.images, "repair", None)
        if repair is None:
            return 0
        return sum(1 for cid, job in held if repair(cid, job) > 0)

    # -- helpers the launch uses ------------------------------------------------------------
    def offer(self, offer_id: str) -> OfferLimits:
        if offer_id not in self._offers:
            self._offers[offer_id] = self.market.offer(offer_id)
        return self._offers[offer_id]

    def save(self, run: Run, **changes: Any) -> None:
        run.record = run.record.but(updated_at=self.clock.now(), **changes)
        self.runs.save_run(run.record)

    def attach(self, run: Run, cores: float) -> None:
        """Capture the container's logs and metrics (from where the store left off)."""
        assert run.container_id is not None
        if run.capture is None or run.capture.error is not None:
            run.capture = LogCapture(run.job.id, run.container_id, self.containers, self.runs,
                                     self.settings).start()
        if run.sampler is None:
            gpu = self._telemetry(run.slot, run.record.simulated_gpu)
            run.sampler = MetricSampler(run.job.id, run.container_id, self.containers, self.runs,
                                        gpu, cores, self.settings.metrics_interval_seconds,
                                        self.clock).start()

    # -- taking jobs ------------------------------------------------------------------------
    def _take(self, job: JobInfo, report: StepReport) -> None:
        slot = self.slots[job.offer_id]
        if job.status is JobStatus.RUNNING:
            self._settle_lost(job, report)  # running, yet no container of ours holds it
            return
        if any(r.slot.gpu_id == slot.gpu_id for r in self._runs.values()):
            return  # the GPU is busy with another job: this one waits in CREATED
        try:
            self.gpus.enter_rented(slot.gpu_id, job.id)
        except GpuBusyError as exc:
            log.info("job %s waits: %s", job.id, exc.detail)
            return
        if job.status is JobStatus.CREATED:
            try:
                job = self.market.accept(job.id)
            except HcpError as exc:
                self.gpus.leave_rented(slot.gpu_id, job.id)
                log.info("could not accept job %s: %s", job.id, exc.code)
                return
            report.accepted.append(job.id)
        record = self.runs.get_run(job.id) or RunRecord(
            job.id, self.identity.agent_id, self.identity.provider, slot.gpu_id, Phase.PULLING,
            self.clock.now())
        run = Run(job, slot, record.but(phase=Phase.PULLING, reason=None, detail=None))
        self._runs[job.id] = run
        self.save(run)
        self._launch(run, report)

    def _launch(self, run: Run, report: StepReport) -> None:
        run.attempts += 1
        run.launching = self._executor.submit(prepare, self, run)
        report.launched.append(run.job.id)

    def _collect(self, report: StepReport) -> None:
        for run in list(self._runs.values()):
            fut: Future[None] | None = run.launching
            if fut is None or not fut.done():
                continue
            run.launching = None
            try:
                fut.result()
            except LaunchFailure as exc:
                self._fail(run, exc.reason, exc.detail, report)
            except LaunchAborted:
                self._end(run, self.market.job(run.job.id), report)
            except HcpError as exc:
                if run.billing:  # up and billed; only a record failed: supervise it from here
                    log.warning("job %s runs, but its launch ended with %s", run.job.id, exc.code)
                elif run.attempts >= self.max_attempts:
                    self._fail(run, Reason.START_FAILED, f"gave up after {run.attempts} attempts: "
                               f"{exc.detail}"[:900], report)
                else:
                    backoff = min(60.0, 2.0 ** run.attempts)
                    log.warning("launch of job %s failed (%s); retrying in %.0fs", run.job.id,
                                exc.code, backoff)
                    self._detach(run)
                    if run.container_id:
                        self.containers.remove(run.container_id)
                    run.container_id, run.capture, run.sampler = None, None, None
                    run.retry_at = self.clock.now() + timedelta(seconds=backoff)
            except Exception as exc:  # a bug must not leave the job holding its GPU forever
                log.exception("launch of job %s crashed", run.job.id)
                self._fail(run, Reason.START_FAILED, f"agent error: {type(exc).__name__}", report)
            else:
                if run.abort is not None and run.stop is None:
                    # A preemption asked for after the launch's last check: the job runs and is
                    # billed, so it is stopped now and paid for the time it ran.
                    run.stop = run.abort
                    if run.container_id:
                        self.containers.stop(run.container_id, self.settings.stop_grace_seconds)
                    self._supervise(run, None, report)

    # -- supervising ------------------------------------------------------------------------
    def _supervise(self, run: Run, job: JobInfo | None, report: StepReport) -> None:
        if job is not None and _RANK[job.status] < _RANK[run.job.status]:
            job = run.job  # the step's snapshot predates our own start of this job
        job = job or self.market.job(run.job.id)
        if job is None or job.status not in LIVE_STATUSES:
            self._end(run, job, report)
            return
        run.job = job
        state = self.containers.inspect(run.container_id) if run.container_id else None
        if state is None or state.status in (ContainerStatus.MISSING, ContainerStatus.EXITED):
            self._finish(run, state, report)
            return
        if state.status is ContainerStatus.CREATED:
            return
        if not run.billing:  # adopted after a crash between start and the marketplace's start
            run.job = self.market.start(job.id)
            run.billing = True
            self.save(run, phase=Phase.RUNNING, container_started_at=state.started_at)
        deadline = (run.job.started_at or self.clock.now()) + timedelta(seconds=job.estimated_seconds)
        if self.clock.now() >= deadline and run.stop is None:
            run.stop = (Reason.MAX_DURATION, (f"the maximum of {job.estimated_seconds} s the "
                                              "escrow covers was reached: stopped"))
            self.containers.stop(run.container_id, self.settings.stop_grace_seconds)  # type: ignore[arg-type]
            self._finish(run, self.containers.inspect(run.container_id), report)  # type: ignore[arg-type]
            return
        if state.health != run.health:
            run.health = state.health
            log.info("job %s health: %s", job.id, state.health)
        if run.capture is None or (run.capture.done and run.capture.error is not None):
            self.attach(run, self.offer(job.offer_id).vcpu)  # the Engine dropped the log stream

    def _finish(self, run: Run, state: ContainerState | None, report: StepReport) -> None:
        """The container ended while its job is live: complete it with the real run time."""
        self._drain(run, state)
        reason, detail = run.stop or (Reason.EXITED, None)
        if state is None or state.status is ContainerStatus.MISSING:
            reason, detail = Reason.CONTAINER_LOST, "the container disappeared from the Engine"
            usage = self._evidence_seconds(run.record)
        else:
            usage = state.run_seconds or 0
            if detail is None:
                detail = f"exit code {state.exit_code}" + (" (out of memory)" if state.oom_killed else "")
        # The outcome is recorded before the money moves: if cleanup fails after it (the Engine
        # went away), the retry keeps this reason instead of reading "ended in the marketplace".
        self.save(run, phase=Phase.STOPPING, reason=reason, detail=detail,
                  exit_code=None if state is None else state.exit_code,
                  oom_killed=bool(state and state.oom_killed),
                  container_finished_at=None if state is None else state.finished_at,
                  usage_seconds=usage)
        if run.job.status is JobStatus.ACCEPTED:
            run.job = self.market.start(run.job.id)  # ran while no agent watched: bill what it can
        self._complete(run.job.id, usage)
        self._teardown(run)
        self.save(run, phase=Phase.SETTLED)  # last: the container and the GPU are released
        log.info("job %s settled: %s (%s), %d s used", run.job.id, reason.value, detail, usage)
        report.settled.append((run.job.id, reason))

    def _end(self, run: Run, job: JobInfo | None, report: StepReport) -> None:
        """The job ended in the marketplace (stopped by the renter, cancelled, disputed):
        stop its container; the money is already decided."""
        reason = Reason.ORPHANED if job is None else _ENDED_BY.get(job.status, Reason.CANCELLED)
        detail = None if job is None else f"job {job.status.value}"
        final = Phase.SETTLED
        if run.record.phase is Phase.STOPPING and run.record.reason is not None:
            # We decided this job's end ourselves and moved its money; only cleanup was left.
            reason, detail = run.record.reason, run.record.detail
            final = Phase.FAILED if reason in _FAILURES else Phase.SETTLED
        state = None
        if run.container_id:
            self.containers.stop(run.container_id, self.settings.stop_grace_seconds)
            state = self.containers.inspect(run.container_id)
        self._drain(run, state)
        changes: dict[str, Any] = {"reason": reason, "detail": detail}
        if state is not None and state.status is not ContainerStatus.MISSING and run.record.exit_code is None:
            changes.update(exit_code=state.exit_code, container_finished_at=state.finished_at)
        self.save(run, phase=Phase.STOPPING, **changes)
        self._teardown(run)
        self.save(run, phase=final)
        log.info("job %s ended in the marketplace (%s): container stopped", run.job.id, reason.value)
        report.settled.append((run.job.id, reason))

    def _fail(self, run: Run, reason: Reason, detail: str, report: StepReport) -> None:
        """The job never ran: everything is refunded."""
        log.warning("job %s failed: %s: %s", run.job.id, reason.value, detail)
        self.save(run, phase=Phase.STOPPING, reason=reason, detail=detail[:1000], usage_seconds=0)
        if run.container_id:
            self.containers.stop(run.container_id, 0)
        self._drain(run, None)
        job = self.market.job(run.job.id)
        if job is not None and job.status is JobStatus.ACCEPTED:
            self.market.cancel(job.id)
        elif job is not None and job.status is JobStatus.RUNNING:
            self._complete(job.id, 0)
        self._teardown(run)
        self.save(run, phase=Phase.FAILED)
        report.failed.append((run.job.id, reason))

    def _complete(self, job_id: str, usage: int) -> JobInfo | None:
        try:
            return self.market.complete(job_id, usage)
        except JobTransitionError:
            # Already closed (our own earlier call whose answer was lost, or the renter): the
            # marketplace paid once; read what it decided.
            return self.market.job(job_id)

    def _drain(self, run: Run, state: ContainerState | None) -> None:
        if run.sampler is not None:
            run.sampler.close()
        if not run.container_id:
            return
        if state is not None and state.status is not ContainerStatus.MISSING and (
                run.capture is None or run.capture.error is not None):
            run.capture = LogCapture(run.job.id, run.container_id, self.containers, self.runs,
                                     self.settings).start()
        if run.capture is not None and not run.capture.wait(self.settings.drain_timeout_seconds):
            log.warning("job %s: log capture still busy after %.0fs", run.job.id,
                        self.settings.drain_timeout_seconds)

    def _detach(self, run: Run) -> None:
        for part in (run.capture, run.sampler):
            if part is not None:
                part.close()

    def _teardown(self, run: Run) -> None:
        self._detach(run)
        if run.container_id:
            self.containers.remove(run.container_id)
        self.gpus.leave_rented(run.slot.gpu_id, run.job.id)
        try:
            self.images.release(run.job.id)
        except HcpError as exc:
            log.info("image lease of job %s not released: %s", run.job.id, exc.code)
        self._runs.pop(run.job.id, None)

    def _evidence_seconds(self, record: RunRecord) -> int:
        seen = self.runs.last_evidence_at(record.job_id)
        if seen is None or record.container_started_at is None:
            return 0
        return max(0, int((seen - record.container_started_at).total_seconds()))

    def _settle_lost(self, job: JobInfo, report: StepReport) -> None:
        slot = self.slots.get(job.offer_id) or Slot(job.offer_id, "unknown")
        record = self.runs.get_run(job.id) or RunRecord(
            job.id, self.identity.agent_id, self.identity.provider, slot.gpu_id, Phase.RUNNING,
            self.clock.now())
        run = Run(job, slot, record, billing=True)
        self._runs[job.id] = run
        self._finish(run, None, report)

    # -- recovery ---------------------------------------------------------------------------
    def _reconcile(self, report: StepReport) -> None:
        self._collect(report)
        found: dict[str, ContainerState] = {}
        for c in self.containers.list_managed(self.identity.agent_id):
            job_id = c.labels.get(LABEL_JOB)
            if job_id and job_id not in found:
                found[job_id] = c
            else:
                self.containers.remove(c.id)
                report.removed.append(c.id)
        open_jobs = {j.id: j for j in self.market.open_jobs() if j.offer_id in self.slots}
        for job_id, c in found.items():
            if job_id in self._runs:
                continue
            job = open_jobs.get(job_id) or self.market.job(job_id)
            self._adopt(job_id, job, c, report)
        for job in open_jobs.values():
            if job.id not in self._runs and job.id not in found and job.status is JobStatus.RUNNING:
                self._settle_lost(job, report)
        for slot in self.slots.values():
            holder = self.gpus.holder(slot.gpu_id)
            held = open_jobs.get(holder) if holder else None
            if holder and holder not in self._runs and (held is None or held.status is not JobStatus.ACCEPTED):
                self.gpus.leave_rented(slot.gpu_id, holder)  # a GPU still rented to an ended job
        for record in self.runs.runs_of(self.identity.agent_id):
            if record.job_id not in self._runs and record.job_id not in open_jobs:
                job = self.market.job(record.job_id)
                self.images.release(record.job_id)
                reason = record.reason or (Reason.ORPHANED if job is None
                                           else _ENDED_BY.get(job.status, Reason.EXITED))
                self.runs.save_run(record.but(
                    phase=Phase.FAILED if reason in _FAILURES else Phase.SETTLED,
                    updated_at=self.clock.now(), reason=reason))
        self._reconciled = True

    def _adopt(self, job_id: str, job: JobInfo | None, c: ContainerState, report: StepReport) -> None:
        gpu_id = c.labels.get(LABEL_GPU, "unknown")
        slot = (self.slots.get(job.offer_id) if job else None) or Slot(
            job.offer_id if job else "unknown", gpu_id)
        record = self.runs.get_run(job_id) or RunRecord(
            job_id, self.identity.agent_id, self.identity.provider, gpu_id, Phase.RUNNING,
            self.clock.now(), container_id=c.id, container_started_at=c.started_at)
        if job is None:
            self.containers.remove(c.id)
            report.removed.append(c.id)
            if self.runs.get_run(job_id) is not None:
                self.runs.save_run(record.but(phase=Phase.SETTLED, reason=Reason.ORPHANED,
                                              updated_at=self.clock.now()))
            return
        run = Run(job, slot, record.but(container_id=c.id), container_id=c.id,
                  billing=job.status is JobStatus.RUNNING)
        self._runs[job_id] = run
        report.adopted.append(job_id)
        if job.status not in LIVE_STATUSES:
            self._end(run, job, report)
            return
        if c.status is ContainerStatus.CREATED:  # never started: launch it afresh
            self.containers.remove(c.id)
            self._runs.pop(job_id)
            return
        self.gpus.enter_rented(slot.gpu_id, job_id)
        if c.status is ContainerStatus.RUNNING:
            self.attach(run, self.offer(job.offer_id).vcpu)
        else:
            run.stop = (Reason.EXITED, f"exit code {c.exit_code}; it ended while no agent watched")
        self._supervise(run, job, report)

