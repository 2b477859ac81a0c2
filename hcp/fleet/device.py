"""A GPU worker bound to the store: switches become durable, restarts resume committed state."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from hcp.errors import (
    GpuBusyError,
    HcpError,
    InvalidTransitionError,
    StoreError,
    SwitchFailedError,
)
from hcp.fleet.holds import Hold, HoldKind
from hcp.fleet.modes import GpuMode
from hcp.fleet.repository import KEEP, FleetRepository
from hcp.fleet.status import DeviceKind, GpuStatus, SwitchResult
from hcp.fleet.worker import GpuWorker, WorkerStatus
from hcp.mining import MiningState

log = logging.getLogger(__name__)

CommittedSwitch = SwitchResult  # the old name


class GpuDevice:
    """The unit a GPU actor wraps. Only committed mode changes count; the rest is rolled back."""

    def __init__(self, worker: GpuWorker, repo: FleetRepository, facility: str) -> None:
        self.worker = worker
        self.repo = repo
        self.facility = facility
        self.device_id = worker.device_id
        self._generation = 0
        self._hold: Hold | None = None
        # What status() reports: (mode, generation, hold) as last committed, replaced in one
        # assignment, so a status read mid-switch never shows a mode without its holder.
        self._view: tuple[GpuMode, int, Hold | None] = (GpuMode.IDLE, 0, None)
        self._commit_lock = threading.Lock()
        self._ckpt_stop = threading.Event()
        self._ckpt_thread: threading.Thread | None = None

    def start(self, restarted: bool = False) -> GpuMode:
        """Resume the last committed mode, cursor and counters, then start the contexts."""
        state = self.repo.device_state(self.device_id)
        self._generation = state.generation
        self._hold = Hold.parse(state.held_by)
        if state.mining_state:
            self.worker.restore_mining(MiningState.from_dict(state.mining_state))
        self.worker.start(state.mode, inference_requests=state.inference_requests)
        self._publish()
        if restarted:
            self.repo.note_restart(self.device_id, self.facility, {
                "mode": state.mode.value, "generation": state.generation,
                "hashes_done": state.hashes_done})
            log.warning("%s restarted; resumed %s at generation %d", self.device_id, state.mode.value,
                        state.generation)
        return state.mode

    def switch(self, target: GpuMode | str, reason: str = "",
               correlation_id: str | None = None) -> SwitchResult:
        """Switch and commit; ``correlation_id`` names the decision or request it answers.

        Refused with ``GpuBusyError`` while a job or workload holds the GPU (see ``hold``):
        the optimizer, the power-cap step and operators never take a customer's GPU silently.
        """
        target = GpuMode.parse(target)
        with self._commit_lock:
            if self._hold is not None:
                raise GpuBusyError(
                    f"{self.device_id} is held by {self._hold}; only its holder changes its mode",
                    gpu_id=self.device_id, holder=self._hold.key, target=target.value)
            if target is GpuMode.RENTED:
                raise InvalidTransitionError(
                    f"{self.device_id}: RENTED is entered for a rental's job, not by a switch",
                    device_id=self.device_id, target=target.value)
            result = self._commit(target, reason, correlation_id, KEEP, None)
            self._publish()
            return result

    def hold(self, hold: Hold, reason: str = "", replaces: Hold | None = None) -> SwitchResult:
        """Hand the GPU to ``hold`` in its mode (RENTED for a job, INFERENCE for a workload).

        Idempotent for the current holder. ``replaces`` names the holder this one may take
        over (a real-time workload preempting an interruptible one); any other holder, or a
        GPU curtailed for its facility's power cap, refuses with ``GpuBusyError``. Entering
        from MINING pauses mining at a batch boundary, as any switch does.
        """
        with self._commit_lock:
            current = self._hold
            if current == hold and self.worker.mode is hold.mode:
                return self._noop(hold.mode)
            if current is not None and current != hold and current != replaces:
                raise GpuBusyError(f"{self.device_id} is held by {current}",
                                   gpu_id=self.device_id, holder=current.key)
            if self.worker.mode is GpuMode.CURTAILED:
                raise GpuBusyError(f"{self.device_id} is curtailed (facility power cap)",
                                   gpu_id=self.device_id)
            result = self._commit(hold.mode, reason or f"held by {hold}", hold.id, hold.key,
                                  current)
            self._hold = hold
            self._publish()
            return result

    def release(self, hold: Hold, then: GpuMode | None = None, reason: str = "") -> SwitchResult | None:
        """``hold`` is over: the GPU returns to the platform. None when it does not hold it.

        A job's GPU leaves RENTED for ``then`` (MINING by default; IDLE if mining does not
        come back healthy); a workload's stays in INFERENCE unless ``then`` says otherwise,
        since switching back is the optimizer's call.
        """
        with self._commit_lock:
            if self._hold != hold:
                return None
            target = then or (GpuMode.MINING if hold.kind is HoldKind.JOB else self.worker.mode)
            reason = reason or f"released by {hold}"
            try:
                result = self._commit(target, reason, hold.id, None, hold)
            except SwitchFailedError:
                log.warning("%s: %s did not come back healthy after %s; left IDLE", self.device_id,
                            target.value, hold)
                result = self._commit(GpuMode.IDLE, reason, hold.id, None, hold)
            self._hold = None
            self._publish()
            return result

    def _publish(self) -> None:
        self._view = (self.worker.mode, self._generation, self._hold)

    @property
    def holder(self) -> Hold | None:
        return self._hold

    def _noop(self, mode: GpuMode) -> SwitchResult:
        report = self.worker.switch(mode)
        return SwitchResult(report, self._generation, 0.0, DeviceKind.GPU, self.facility)

    def _commit(self, target: GpuMode, reason: str, correlation_id: str | None,
                held_by: Any, holder_before: Hold | None) -> SwitchResult:
        """Switch the worker and make it durable (caller holds the commit lock). A change of
        holder alone (already in the mode) is committed without a mode change."""
        report = self.worker.switch(target, reason)
        if report.noop:
            if held_by is not KEEP:
                self.repo.set_holder(self.device_id, self._generation, held_by,
                                     holder_before.key if holder_before else None)
            return SwitchResult(report, self._generation, 0.0, DeviceKind.GPU, self.facility,
                                correlation_id=correlation_id)
        t0 = time.perf_counter()
        try:
            saved = self.worker.saved_state
            gen = self.repo.commit_mode_change(
                report, self._generation, facility=self.facility,
                mining_state=saved.to_dict() if saved else None,
                hashes_done=saved.hashes_done if saved else None,
                correlation_id=correlation_id, held_by=held_by)
        except HcpError:
            # The switch is only real once committed: put the device back where the record says.
            self.worker.rollback(report)
            raise
        self._generation = gen
        return SwitchResult(report, gen, (time.perf_counter() - t0) * 1e3, DeviceKind.GPU,
                            self.facility, correlation_id=correlation_id)

    def checkpoint(self) -> int:
        """Persist new shares (deduplicated) and the mining cursor and counters; returns shares added."""
        shares = self.worker.drain_shares()
        try:
            added = self.repo.record_shares(self.device_id, shares)
        except StoreError:
            self.worker.requeue_shares(shares)
            raise
        # Cursor after shares: a crash in between re-finds those shares, and the store dedups them.
        snap = self.worker.mining_snapshot()
        self.repo.checkpoint(self.device_id, snap.to_dict(), snap.hashes_done, self.worker.inference_requests)
        return added

    def start_checkpointing(self, every_s: float,
                            on_status: Callable[[WorkerStatus], None] | None = None) -> None:
        """Persist periodically; ``on_status`` receives a fresh status each time (metrics export)."""

        def loop() -> None:
            while not self._ckpt_stop.wait(every_s):
                try:
                    self.checkpoint()
                except StoreError:
                    log.exception("%s: checkpoint failed; will retry", self.device_id)
                if on_status is not None:
                    try:
                        on_status(self.worker.status())
                    except Exception:  # metrics must never stop checkpointing
                        log.exception("%s: status export failed", self.device_id)

        self._ckpt_thread = threading.Thread(target=loop, name=f"ckpt-{self.device_id}", daemon=True)
        self._ckpt_thread.start()

    def status(self) -> GpuStatus:
        w = self.worker.status()
        mode, generation, hold = self._view
        return GpuStatus(
            device_id=w.device_id, facility=self.facility, mode=mode, generation=generation,
            hashes_done=w.hashes_done, shares_found=w.shares_found, hashrate_hs=w.hashrate_hs,
            inference_requests=w.inference_requests, utilization=w.utilization,
            telemetry=w.telemetry, mining_backend=w.mining_backend,
            inference_model=w.inference_model,
            held_by=hold.key if hold else None)

    @property
    def generation(self) -> int:
        return self._generation

    def stop(self) -> None:
        self._ckpt_stop.set()
        self.worker.stop()
        try:
            self.checkpoint()
        except StoreError:
            log.exception("%s: final checkpoint failed", self.device_id)
