"""The Ray actor of one GPU: a thin shell over hcp.fleet.device.GpuDevice."""

from __future__ import annotations

import logging

import ray

from hcp.clock import SystemClock
from hcp.config import Settings
from hcp.errors import HcpError, UnknownDeviceError
from hcp.fleet.builder import build_gpu_worker
from hcp.fleet.device import GpuDevice
from hcp.fleet.holds import Hold
from hcp.fleet.modes import GpuMode, SwitchRequest
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import GpuSpec
from hcp.fleet.status import GpuStatus, SwitchResult
from hcp.fleet.worker import WorkerStatus
from hcp.logging_setup import configure_for
from hcp.observability.fleet import record_device, record_switch
from hcp.observability.history import HistoryRecorder, SqlHistory
from hcp.store import engine_for

log = logging.getLogger(__name__)


class _GpuMetrics:
    """The catalogue's device and switch metrics (hcp.observability), exported through Ray's
    metrics agent on this node, and the minutes of the store's own metrics history."""

    def __init__(self, spec: GpuSpec, history: HistoryRecorder,
                 temperature_limit_c: float | None) -> None:
        from actors.metrics_sink import RaySink

        self._sink = RaySink()
        self._spec = spec
        self._shares: int | None = None
        self._history = history
        self._limit = temperature_limit_c

    def export(self, st: WorkerStatus) -> None:
        record_device(self._sink, st, facility=self._spec.facility, kind="gpu",
                      model=self._spec.model, temperature_limit_c=self._limit,
                      shares_before=self._shares)
        self._shares = st.shares_found
        t = st.telemetry
        self._history.add(t.at, t.power_w, t.temperature_c, st.utilization, st.hashrate_hs)

    def failed(self, exc: HcpError) -> None:
        """A switch refused or failed, by its error code (a bounded set: hcp.errors)."""
        try:
            self._sink.inc("hcp_switch_failures_total", kind="gpu", reason=exc.code)
        except Exception:
            log.exception("%s: switch failure metrics failed", self._spec.id)

    def switched(self, result: SwitchResult) -> None:
        try:
            record_switch(self._sink, result.report, kind="gpu")
        except Exception:  # metrics must never fail a committed switch
            log.exception("%s: switch metrics failed", self._spec.id)


@ray.remote
class GpuActor:
    def __init__(self, spec: GpuSpec, settings: Settings) -> None:
        configure_for(settings)
        ctx = ray.get_runtime_context()
        gpu_ids = ctx.get_accelerator_ids().get("GPU", [])
        worker = build_gpu_worker(
            spec, settings,
            cuda_ordinal=0 if gpu_ids else None,
            nvml_index=int(gpu_ids[0]) if gpu_ids else None,
        )
        engine = engine_for(settings.resolved_database_url)
        self._device = GpuDevice(worker, FleetRepository(engine), spec.facility)
        self._device.start(restarted=ctx.was_current_actor_reconstructed)
        # The operator's limit from the fleet spec, else the board's own (NVML).
        limit = spec.temperature_limit_c or worker.temperature_limit_c
        self._metrics = _GpuMetrics(spec, HistoryRecorder(spec.id, spec.facility,
                                                          SqlHistory(engine), SystemClock()), limit)
        self._device.start_checkpointing(settings.fleet.checkpoint_seconds, on_status=self._metrics.export)

    def switch(self, request: SwitchRequest) -> SwitchResult:
        if request.device_id != self._device.device_id:
            # A request sent to the wrong actor is a wiring fault: refuse it, never switch
            # this GPU for another's request.
            raise UnknownDeviceError(f"{request.device_id!r} is not {self._device.device_id!r}",
                                     device_id=request.device_id)
        try:
            result = self._device.switch(request.target, request.reason, request.correlation_id)
        except HcpError as exc:
            self._metrics.failed(exc)
            raise
        self._metrics.switched(result)
        return result

    def hold(self, hold: Hold, reason: str = "", replaces: Hold | None = None) -> SwitchResult:
        result = self._device.hold(hold, reason, replaces)
        self._metrics.switched(result)
        return result

    def release(self, hold: Hold, then: GpuMode | None = None, reason: str = ""
                ) -> SwitchResult | None:
        result = self._device.release(hold, then, reason)
        if result is not None:
            self._metrics.switched(result)
        return result

    def status(self) -> GpuStatus:
        return self._device.status()

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self._device.worker.embed(texts).tolist()

    def probe_inference_ms(self) -> float:
        return self._device.worker.probe_inference_ms()

    def checkpoint(self) -> int:
        return self._device.checkpoint()

    def pid(self) -> int:
        import os

        return os.getpid()

    def shutdown(self) -> None:
        self._device.stop()
