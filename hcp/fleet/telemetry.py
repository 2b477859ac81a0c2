"""GPU telemetry: real readings through NVML, or a clearly labelled simulated device model.

Every sample says where it came from (``source`` is "nvml" or "simulated"), so a
dashboard, a metric or a bill can never mistake modelled watts for measured ones.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from hcp.clock import Clock, SystemClock
from hcp.errors import ConfigError, ContextUnavailableError, ValidationError
from hcp.fleet.modes import GpuMode

logger = logging.getLogger(__name__)

SOURCE_NVML = "nvml"
SOURCE_SIMULATED = "simulated"


@dataclass(frozen=True)
class TelemetrySample:
    power_w: float
    temperature_c: float
    utilization_pct: float
    memory_used_mb: float
    memory_total_mb: float
    source: str  # "nvml" or "simulated"
    at: datetime  # UTC-aware

    @property
    def simulated(self) -> bool:
        return self.source == SOURCE_SIMULATED

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = self.at.isoformat()
        # Spelled out as well as in "source", so no consumer has to know the label values.
        d["simulated"] = self.simulated
        return d


@runtime_checkable
class TelemetrySource(Protocol):
    source: str

    def sample(self, mode: GpuMode, utilization: float) -> TelemetrySample:
        """One reading. ``utilization`` (0..1) is the worker's measured busy fraction."""
        ...


def _check_utilization(utilization: float) -> float:
    """Validate a busy fraction, absorbing float noise such as 1.0000000002."""
    u = float(utilization)
    if not math.isfinite(u) or u < -1e-6 or u > 1 + 1e-6:
        raise ValidationError(f"utilization must be within 0..1, got {utilization!r}")
    return min(1.0, max(0.0, u))


# --- NVML --------------------------------------------------------------------------


def nvml_available() -> bool:
    """True when the NVIDIA driver's NVML library loads and reports at least one GPU."""
    try:
        import pynvml  # the maintained binding is distributed as nvidia-ml-py
    except ImportError:
        return False
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound / DriverNotLoaded on machines without a GPU
        return False
    try:
        return int(pynvml.nvmlDeviceGetCount()) > 0
    except Exception:
        return False
    finally:
        # Shutting down a half-initialized NVML is best effort.
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


class NvmlTelemetry:
    """Measured telemetry of GPU ``index`` via NVML. ``mode`` and ``utilization`` are ignored:
    the hardware reports its own state."""

    source = SOURCE_NVML

    def __init__(self, index: int, clock: Clock | None = None) -> None:
        if index < 0:
            raise ConfigError(f"GPU index must be >= 0, got {index}")
        try:
            import pynvml
        except ImportError as exc:
            raise ContextUnavailableError(
                "NVML telemetry needs the nvidia-ml-py package (module pynvml)"
            ) from exc
        self._nvml = pynvml
        self.index = index
        self._clock = clock or SystemClock()
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise ContextUnavailableError(
                f"NVML could not be initialized (is the NVIDIA driver installed?): {exc}",
                gpu_index=index,
            ) from exc
        # nvmlInit is reference-counted: from here on every failure must shut down once.
        try:
            count = int(pynvml.nvmlDeviceGetCount())
            if index >= count:
                raise ContextUnavailableError(
                    f"GPU index {index} out of range: NVML sees {count} device(s)", gpu_index=index
                )
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(self._handle)
        except pynvml.NVMLError as exc:
            pynvml.nvmlShutdown()
            raise ContextUnavailableError(
                f"NVML could not open GPU {index}: {exc}", gpu_index=index
            ) from exc
        except ContextUnavailableError:
            pynvml.nvmlShutdown()
            raise
        self.name = name.decode() if isinstance(name, bytes) else str(name)
        # Where the board starts to slow its clocks: the limit an alert compares against.
        self.temperature_limit_c: float | None = None
        try:
            self.temperature_limit_c = float(pynvml.nvmlDeviceGetTemperatureThreshold(
                self._handle, pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN))
        except pynvml.NVMLError:
            logger.info("GPU %d reports no slowdown temperature", index)
        self._closed = False
        logger.info("NVML telemetry for GPU %d (%s)", index, self.name)

    def sample(self, mode: GpuMode, utilization: float) -> TelemetrySample:
        if self._closed:
            raise ContextUnavailableError(f"NVML telemetry for GPU {self.index} is closed")
        nv = self._nvml
        try:
            power_w = nv.nvmlDeviceGetPowerUsage(self._handle) / 1000.0  # mW → W
            temperature_c = float(
                nv.nvmlDeviceGetTemperature(self._handle, nv.NVML_TEMPERATURE_GPU)
            )
            util = nv.nvmlDeviceGetUtilizationRates(self._handle)
            mem = nv.nvmlDeviceGetMemoryInfo(self._handle)
        except nv.NVMLError as exc:
            raise ContextUnavailableError(
                f"NVML read of GPU {self.index} failed: {exc}", gpu_index=self.index
            ) from exc
        return TelemetrySample(
            power_w=float(power_w),
            temperature_c=temperature_c,
            utilization_pct=float(util.gpu),
            memory_used_mb=mem.used / 2**20,  # MiB, as nvidia-smi reports "MiB"
            memory_total_mb=mem.total / 2**20,
            source=SOURCE_NVML,
            at=self._clock.now(),
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                logger.debug("nvmlShutdown failed", exc_info=True)


# --- simulated device model ----------------------------------------------------------

# Fraction of TDP drawn while hashing: mining kernels keep the GPU near its power limit.
MINING_TDP_FRACTION = 0.95
# Load (between idle and TDP) of a resident, serving inference context: at zero
# utilization clocks and memory stay up, so it draws more than IDLE; at full
# utilization an embedding model stays below mining's near-TDP draw.
INFERENCE_LOAD_FLOOR = 0.10
INFERENCE_LOAD_CEIL = 0.85
# Steady-state temperature rise above ambient at full TDP (air-cooled datacenter GPU).
DEFAULT_RISE_AT_TDP_C = 50.0
DEFAULT_TIME_CONSTANT_S = 30.0
# Bounded uniform noise: a fraction of the modelled power, and absolute degrees.
POWER_NOISE_FRACTION = 0.01
TEMPERATURE_NOISE_C = 0.3


class SimulatedTelemetry:
    """A SIMULATED GPU (not a measurement): power by mode and utilization, first-order
    thermal response, resident-context memory. Every sample is labelled "simulated".

    Used where no NVIDIA driver is present, so the platform runs end to end anywhere.
    """

    source = SOURCE_SIMULATED

    def __init__(
        self,
        model: str,
        tdp_w: float,
        idle_w: float,
        memory_total_mb: float,
        resident_mb: float,
        ambient_c: float = 25.0,
        seed: int | None = None,
        clock: Clock | None = None,
        *,
        curtailed_w: float = 5.0,
        time_constant_s: float = DEFAULT_TIME_CONSTANT_S,
        rise_at_tdp_c: float = DEFAULT_RISE_AT_TDP_C,
    ) -> None:
        if not (0 < idle_w < tdp_w):
            raise ConfigError(f"need 0 < idle_w < tdp_w, got idle_w={idle_w}, tdp_w={tdp_w}")
        if not (0 <= curtailed_w < idle_w):
            raise ConfigError(f"need 0 <= curtailed_w < idle_w, got {curtailed_w}")
        if not (0 <= resident_mb <= memory_total_mb) or memory_total_mb <= 0:
            raise ConfigError(
                f"need 0 <= resident_mb <= memory_total_mb, got {resident_mb} / {memory_total_mb}"
            )
        if time_constant_s <= 0 or rise_at_tdp_c <= 0:
            raise ConfigError("time_constant_s and rise_at_tdp_c must be positive")
        self.model = model
        self.tdp_w = float(tdp_w)
        self.idle_w = float(idle_w)
        self.curtailed_w = float(curtailed_w)
        self.memory_total_mb = float(memory_total_mb)
        self.resident_mb = float(resident_mb)
        self.ambient_c = float(ambient_c)
        self.time_constant_s = float(time_constant_s)
        self.thermal_resistance_c_per_w = rise_at_tdp_c / self.tdp_w
        self._rng = random.Random(seed)
        self._clock = clock or SystemClock()
        # A freshly started device sits idle, at its idle steady state.
        self._temperature_c = self.steady_temperature_c(self.idle_w)
        self._last_t: float | None = None
        self._lock = threading.Lock()  # sample() advances shared thermal state

    def __repr__(self) -> str:
        return f"SimulatedTelemetry(model={self.model!r}, tdp_w={self.tdp_w}, SIMULATED)"

    def power_w(self, mode: GpuMode, utilization: float) -> float:
        """Noise-free modelled power for ``mode`` at ``utilization`` (0..1)."""
        if mode is GpuMode.CURTAILED:
            return self.curtailed_w
        span = self.tdp_w - self.idle_w
        if mode is GpuMode.MINING:
            load = (MINING_TDP_FRACTION * self.tdp_w - self.idle_w) / span
        elif mode is GpuMode.INFERENCE:
            load = INFERENCE_LOAD_FLOOR + (INFERENCE_LOAD_CEIL - INFERENCE_LOAD_FLOOR) * utilization
        elif mode is GpuMode.RENTED:
            # A renter's container is not ours to see without NVML: modelled as fully busy,
            # the draw the facility cap must budget for.
            load = INFERENCE_LOAD_CEIL
        else:  # IDLE
            load = 0.0
        return self.idle_w + span * min(1.0, max(0.0, load))

    def steady_temperature_c(self, power_w: float) -> float:
        return self.ambient_c + self.thermal_resistance_c_per_w * power_w

    def sample(self, mode: GpuMode, utilization: float) -> TelemetrySample:
        mode = GpuMode.parse(mode)
        u = _check_utilization(utilization)
        if mode is GpuMode.MINING:
            busy_pct = 100.0  # hashing saturates the device whatever the worker reports
        elif mode is GpuMode.INFERENCE:
            busy_pct = 100.0 * u
        elif mode is GpuMode.RENTED:
            busy_pct = 100.0
        else:
            busy_pct = 0.0
        with self._lock:
            modelled = self.power_w(mode, u)
            noise = self._rng.uniform(-POWER_NOISE_FRACTION, POWER_NOISE_FRACTION) * modelled
            power = min(self.tdp_w, max(0.0, modelled + noise))
            self._advance_temperature(power)
            temperature = self._temperature_c + self._rng.uniform(
                -TEMPERATURE_NOISE_C, TEMPERATURE_NOISE_C
            )
        return TelemetrySample(
            power_w=power,
            temperature_c=temperature,
            utilization_pct=busy_pct,
            # Both contexts (mining buffers, inference weights) stay resident in every mode,
            # CURTAILED included: freeing them would turn the next wake-up into a cold reload.
            memory_used_mb=min(self.resident_mb, self.memory_total_mb),
            memory_total_mb=self.memory_total_mb,
            source=SOURCE_SIMULATED,
            at=self._clock.now(),
        )

    def _advance_temperature(self, power_w: float) -> None:
        """First-order lag toward the steady state of the current power, exact for any step."""
        now = self._clock.monotonic()
        if self._last_t is not None:
            dt = max(0.0, now - self._last_t)  # a clock that steps back must not cool the die
            target = self.steady_temperature_c(power_w)
            self._temperature_c += (target - self._temperature_c) * (
                1.0 - math.exp(-dt / self.time_constant_s)
            )
        self._last_t = now


# --- choosing a source ---------------------------------------------------------------

_announced: set[str] = set()
_announce_lock = threading.Lock()


def _announce(kind: str, message: str, *args: object) -> None:
    """Log the chosen telemetry source at INFO once per process, later at DEBUG."""
    with _announce_lock:
        first = kind not in _announced
        _announced.add(kind)
    logger.log(logging.INFO if first else logging.DEBUG, message, *args)


def open_telemetry(
    index: int | None,
    model: str,
    tdp_w: float,
    idle_w: float,
    memory_total_mb: float,
    resident_mb: float,
    prefer_nvml: bool = True,
) -> TelemetrySource:
    """NVML for GPU ``index`` when the driver is present, else the simulated model."""
    if not prefer_nvml:
        reason = "NVML disabled by configuration"
    elif index is None:
        reason = "no GPU index given"
    elif not nvml_available():
        reason = "NVML unavailable"
    else:
        try:
            source = NvmlTelemetry(index)
        except ContextUnavailableError as exc:
            logger.warning("NVML present but GPU %s unusable: %s", index, exc)
            reason = f"GPU {index} unusable through NVML"
        else:
            _announce(SOURCE_NVML, "GPU telemetry: NVML (measured)")
            return source
    _announce(
        SOURCE_SIMULATED,
        "GPU telemetry: SIMULATED device model for %s (%s); readings are modelled, not measured",
        model,
        reason,
    )
    return SimulatedTelemetry(
        model=model,
        tdp_w=tdp_w,
        idle_w=idle_w,
        memory_total_mb=memory_total_mb,
        resident_mb=resident_mb,
    )
