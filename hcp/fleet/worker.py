"""One GPU with both compute contexts resident, switching between them at batch boundaries.

The worker owns a mining thread that runs short batches of real SHA-256d work. A switch
never reloads anything: it stops the mining thread at its next batch boundary, snapshots
the mining cursor, flips the active context and runs a cheap health check on it.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hcp.clock import Clock, SystemClock
from hcp.errors import ContextUnavailableError, SwitchFailedError
from hcp.fleet.modes import GpuMode, SwitchPhases, SwitchReport
from hcp.fleet.telemetry import TelemetrySample, TelemetrySource

if TYPE_CHECKING:
    import numpy as np

    from hcp.inference import InferenceModel
    from hcp.mining import MiningContext, MiningState, Share

log = logging.getLogger(__name__)

# A mining thread that holds the GIL for the interpreter's default 5 ms slice would put a
# 5 ms floor under every switch; a shorter slice lets the switch thread in almost at once.
_SWITCH_INTERVAL_S = 0.0005
_WINDOW_S = 5.0


@dataclass(frozen=True)
class WorkerStatus:
    device_id: str
    mode: GpuMode
    hashes_done: int
    shares_found: int
    hashrate_hs: float
    inference_requests: int
    utilization: float
    telemetry: TelemetrySample
    mining_backend: str
    inference_model: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id, "mode": self.mode.value, "hashes_done": self.hashes_done,
            "shares_found": self.shares_found, "hashrate_hs": self.hashrate_hs,
            "inference_requests": self.inference_requests, "utilization": self.utilization,
            "telemetry": self.telemetry.to_dict(), "mining_backend": self.mining_backend,
            "inference_model": self.inference_model,
        }


class _BusyMeter:
    """Busy fraction and work rate over a sliding window."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._spans: deque[tuple[float, float, int]] = deque()  # (end, busy_s, units)
        self._lock = threading.Lock()

    def add(self, busy_s: float, units: int) -> None:
        now = self._clock.monotonic()
        with self._lock:
            self._spans.append((now, busy_s, units))
            while self._spans and self._spans[0][0] < now - _WINDOW_S:
                self._spans.popleft()

    def read(self) -> tuple[float, float]:
        now = self._clock.monotonic()
        with self._lock:
            spans = [s for s in self._spans if s[0] >= now - _WINDOW_S]
        busy = sum(s[1] for s in spans)
        units = sum(s[2] for s in spans)
        return min(1.0, busy / _WINDOW_S), units / _WINDOW_S


class GpuWorker:
    def __init__(
        self,
        device_id: str,
        mining: MiningContext,
        inference: InferenceModel,
        telemetry: TelemetrySource,
        *,
        mining_cpu_share: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        if not 0 < mining_cpu_share <= 1:
            raise ValueError("mining_cpu_share must be in (0, 1]")
        self.device_id = device_id
        self._mining = mining
        self._inference = inference
        self._telemetry = telemetry
        self._cpu_share = mining_cpu_share
        self._clock = clock or SystemClock()
        self._mode = GpuMode.IDLE
        self._switch_lock = threading.Lock()  # one switch at a time
        self._batch_lock = threading.Lock()  # held for the length of one mining batch
        self._mining_on = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending_shares: list[Share] = []
        self._shares_lock = threading.Lock()
        self._inference_requests = 0
        self._mining_meter = _BusyMeter(self._clock)
        self._inference_meter = _BusyMeter(self._clock)
        self.saved_state: MiningState | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, mode: GpuMode = GpuMode.IDLE, inference_requests: int = 0) -> None:
        """Bring both contexts up (weights loaded and warmed, kernels warmed) and enter ``mode``."""
        if self._thread is not None:
            return
        sys.setswitchinterval(_SWITCH_INTERVAL_S)
        self._inference.load()
        self._inference.warm()
        self._mining.backend.warm()
        self._inference_requests = inference_requests
        self._mode = mode
        self._thread = threading.Thread(target=self._mine_loop, name=f"mine-{self.device_id}", daemon=True)
        self._thread.start()
        if mode is GpuMode.MINING:
            self._mining_on.set()
        log.info("%s up in %s (mining on %s, inference %s)", self.device_id, mode.value,
                 self._mining.backend.name, self._inference.name)

    def stop(self) -> None:
        self._stop.set()
        self._mining_on.set()  # wake a parked thread so it can see the stop flag
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def mode(self) -> GpuMode:
        return self._mode

    # -- switching ----------------------------------------------------------------------
    def switch(self, target: GpuMode, reason: str = "") -> SwitchReport:
        target = GpuMode.parse(target)
        with self._switch_lock:
            source = self._mode
            t0 = self._clock.monotonic()
            if target is source:
                zero = SwitchPhases(0.0, 0.0, 0.0, 0.0)
                return SwitchReport(self.device_id, source, target, zero, 0.0, self._clock.now(), reason, True, True)
            # pause: stop mining at its next batch boundary (waits for at most one batch)
            self._mining_on.clear()
            with self._batch_lock:
                t1 = self._clock.monotonic()
                # save state: the mining cursor, so mining resumes exactly where it stopped
                self.saved_state = self._mining.snapshot()
                t2 = self._clock.monotonic()
                # activate: a pointer swap; both contexts are already resident and warm
                self._mode = target
                t3 = self._clock.monotonic()
                healthy = self._healthy(target)
                t4 = self._clock.monotonic()
                if not healthy:
                    self._mode = source
                    if source is GpuMode.MINING:
                        self._mining_on.set()
                    raise SwitchFailedError(
                        f"{self.device_id}: {target.value} context failed its health check; "
                        f"stayed in {source.value}", device_id=self.device_id, target=target.value)
            if target is GpuMode.MINING:
                self._mining_on.set()
            phases = SwitchPhases(
                pause_ms=(t1 - t0) * 1e3, save_state_ms=(t2 - t1) * 1e3,
                activate_ms=(t3 - t2) * 1e3, health_check_ms=(t4 - t3) * 1e3,
            )
            return SwitchReport(self.device_id, source, target, phases, (t4 - t0) * 1e3,
                                self._clock.now(), reason, True, False)

    def rollback(self, report: SwitchReport) -> None:
        """Undo a switch whose commit failed, so the device matches the committed record."""
        if not report.noop and self._mode is report.to_mode:
            self.switch(report.from_mode, reason=f"rollback: {report.reason}")

    def _healthy(self, target: GpuMode) -> bool:
        if target is GpuMode.MINING:
            return self._mining.health_check()
        if target is GpuMode.INFERENCE:
            return self._inference.health_check()
        return True

    # -- inference ----------------------------------------------------------------------
    def embed(self, texts: list[str]) -> np.ndarray:
        if self._mode is not GpuMode.INFERENCE:
            raise ContextUnavailableError(
                f"{self.device_id} is in {self._mode.value}, not INFERENCE", device_id=self.device_id)
        t0 = self._clock.monotonic()
        out = self._inference.embed(texts)
        self._inference_meter.add(self._clock.monotonic() - t0, len(texts))
        self._inference_requests += 1
        return out

    def probe_inference_ms(self) -> float:
        """One real forward pass on the inference context (the first-inference-after-switch figure)."""
        return self._inference.probe()

    # -- mining -------------------------------------------------------------------------
    def _mine_loop(self) -> None:
        while not self._stop.is_set():
            if not self._mining_on.wait(timeout=0.5):
                continue
            with self._batch_lock:
                if not self._mining_on.is_set() or self._stop.is_set():
                    continue
                t0 = self._clock.monotonic()
                h0 = self._mining.hashes_done
                try:
                    # A switch clears _mining_on: backends that can stop mid-batch do so,
                    # and the abandoned range is mined again later (nothing skipped).
                    shares = self._mining.mine_batch(cancel=self._mining_paused)
                except Exception:  # a broken backend must park the thread, not kill the actor
                    log.exception("%s: mining batch failed; mining parked", self.device_id)
                    self._mining_on.clear()
                    continue
                busy = self._clock.monotonic() - t0
                hashed = self._mining.hashes_done - h0
            self._mining_meter.add(busy, hashed)
            if shares:
                with self._shares_lock:
                    self._pending_shares.extend(shares)
            if self._cpu_share < 1.0:
                # Duty-cycle throttle: a CPU-backed "GPU" mines only its share of a core.
                self._stop.wait(busy * (1.0 - self._cpu_share) / self._cpu_share)

    def _mining_paused(self) -> bool:
        return not self._mining_on.is_set()

    def drain_shares(self) -> list[Share]:
        with self._shares_lock:
            out, self._pending_shares = self._pending_shares, []
        return out

    def requeue_shares(self, shares: list[Share]) -> None:
        with self._shares_lock:
            self._pending_shares[:0] = shares

    def mining_snapshot(self) -> MiningState:
        with self._batch_lock:
            return self._mining.snapshot()

    def restore_mining(self, state: MiningState) -> None:
        with self._batch_lock:
            self._mining.restore(state)

    # -- status -------------------------------------------------------------------------
    @property
    def temperature_limit_c(self) -> float | None:
        """The board's own limit where its telemetry reports one (NVML's slowdown threshold)."""
        limit = getattr(self._telemetry, "temperature_limit_c", None)
        return None if limit is None else float(limit)

    @property
    def inference_requests(self) -> int:
        return self._inference_requests

    def utilization(self) -> float:
        if self._mode is GpuMode.MINING:
            return self._mining_meter.read()[0]
        if self._mode is GpuMode.INFERENCE:
            return self._inference_meter.read()[0]
        return 0.0

    def status(self) -> WorkerStatus:
        util = self.utilization()
        hashrate = self._mining_meter.read()[1] if self._mode is GpuMode.MINING else 0.0
        return WorkerStatus(
            device_id=self.device_id, mode=self._mode, hashes_done=self._mining.hashes_done,
            shares_found=self._mining.shares_found, hashrate_hs=hashrate,
            inference_requests=self._inference_requests, utilization=util,
            telemetry=self._telemetry.sample(self._mode, util),
            mining_backend=self._mining.backend.name, inference_model=self._inference.name,
        )
