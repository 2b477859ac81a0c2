"""Metric samples of a running container: CPU, memory and pids from Docker's stats, the GPU
from NVML (a real device) or the simulated device model (``hcp.fleet.telemetry``), labelled.

The simulated GPU of a CPU-backed host is driven by the container's CPU use: its
utilization is the container's busy share of the cores the offer gave it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from hcp.agent.messages import MetricSample, StatsReading
from hcp.agent.ports import ContainerPort, RunStore
from hcp.clock import Clock
from hcp.errors import HcpError
from hcp.fleet.catalog import find_gpu
from hcp.fleet.modes import GpuMode
from hcp.fleet.telemetry import SimulatedTelemetry, TelemetrySource, open_telemetry

log = logging.getLogger(__name__)


def telemetry_for(model: str, device_index: int | None) -> TelemetrySource:
    """NVML for a real device, else the simulated model of ``model`` (catalog figures)."""
    spec = find_gpu(model)
    tdp, idle, mem_mb = (spec.power_w, spec.idle_w, spec.memory_gb * 1024) if spec else (300.0, 30.0, 24576.0)
    if device_index is None:
        return SimulatedTelemetry(model=model, tdp_w=tdp, idle_w=idle, memory_total_mb=mem_mb,
                                  resident_mb=0.0)
    return open_telemetry(device_index, model, tdp, idle, mem_mb, 0.0)


def cpu_percent(prev: StatsReading | None, cur: StatsReading) -> float:
    """Busy share of one core between two readings (Docker's own formula, per core)."""
    if prev is None:
        return 0.0
    d_cpu = cur.cpu_total_ns - prev.cpu_total_ns
    d_sys = cur.system_total_ns - prev.system_total_ns
    if d_cpu <= 0 or d_sys <= 0:
        return 0.0
    return round(d_cpu / d_sys * cur.online_cpus * 100.0, 3)


class MetricSampler:
    def __init__(self, job_id: str, container_id: str, containers: ContainerPort, runs: RunStore,
                 gpu: TelemetrySource, cores: float, interval_s: float, clock: Clock,
                 wait: Callable[[threading.Event, float], bool] | None = None) -> None:
        self.job_id = job_id
        self.container_id = container_id
        self._containers = containers
        self._runs = runs
        self._gpu = gpu
        self._cores = max(cores, 1e-9)
        self._interval = interval_s
        self._clock = clock
        self._stop = threading.Event()
        self.last: MetricSample | None = None  # what the oracle's heartbeat reports
        self._prev: StatsReading | None = None
        self._seq: int | None = None
        self._wait = wait or (lambda ev, t: ev.wait(t))
        self._thread: threading.Thread | None = None

    def start(self) -> MetricSampler:
        self._thread = threading.Thread(target=self._loop, name=f"hcp-metrics-{self.job_id[:8]}",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()

    def sample_once(self) -> MetricSample | None:
        """Read and store one sample (None while the container is not running)."""
        reading = self._containers.stats(self.container_id)
        if reading is None:
            return None
        cpu = cpu_percent(self._prev, reading)
        self._prev = reading
        utilization = min(1.0, cpu / 100.0 / self._cores)
        gpu = self._gpu.sample(GpuMode.INFERENCE, utilization).to_dict()
        if self._seq is None:
            self._seq = self._runs.next_metric_seq(self.job_id)
        sample = MetricSample(self._seq, self._clock.now(), cpu, reading.mem_bytes,
                              reading.mem_limit_bytes, reading.pids, _bounded(gpu))
        self._runs.append_metrics(self.job_id, [sample])
        self._seq += 1
        self.last = sample
        return sample

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample_once()
            except HcpError as exc:
                log.info("metrics of job %s: %s", self.job_id, exc.code)
            except Exception:  # a sampler must never take the agent down
                log.exception("metrics of job %s failed", self.job_id)
            self._wait(self._stop, self._interval)


def _bounded(gpu: dict[str, Any]) -> dict[str, Any]:
    keep = ("power_w", "temperature_c", "utilization_pct", "memory_used_mb", "memory_total_mb",
            "source", "simulated")
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in gpu.items() if k in keep}
