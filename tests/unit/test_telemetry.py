"""Telemetry: the simulated device model's physics, the NVML fallback, and (on GPU) NVML."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from hcp.errors import ConfigError, ValidationError
from hcp.fleet.modes import GpuMode
from hcp.fleet.telemetry import (
    SimulatedTelemetry,
    TelemetrySample,
    TelemetrySource,
    nvml_available,
    open_telemetry,
)

TDP_W, IDLE_W, TOTAL_MB, RESIDENT_MB = 700.0, 70.0, 81_559.0, 6_000.0


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return datetime(2025, 1, 1, tzinfo=timezone.utc)

    def monotonic(self) -> float:
        return self.t


def make_sim(clock: FakeClock | None = None, seed: int = 7) -> SimulatedTelemetry:
    return SimulatedTelemetry(
        "H100-SXM", TDP_W, IDLE_W, TOTAL_MB, RESIDENT_MB, ambient_c=25.0, seed=seed, clock=clock
    )


def run_for(
    sim: SimulatedTelemetry,
    clock: FakeClock,
    mode: GpuMode,
    seconds: float,
    step: float = 1.0,
    utilization: float = 0.0,
) -> list[TelemetrySample]:
    samples = []
    for _ in range(int(seconds / step)):
        clock.t += step
        samples.append(sim.sample(mode, utilization))
    return samples


def test_power_ordering_by_mode() -> None:
    sim = make_sim(FakeClock())
    mean = {
        mode: sum(sim.sample(mode, 0.05).power_w for _ in range(200)) / 200
        for mode in (GpuMode.MINING, GpuMode.INFERENCE, GpuMode.IDLE, GpuMode.CURTAILED)
    }
    assert (
        mean[GpuMode.MINING]
        > mean[GpuMode.INFERENCE]
        > mean[GpuMode.IDLE]
        > mean[GpuMode.CURTAILED]
    )
    assert mean[GpuMode.MINING] == pytest.approx(0.95 * TDP_W, rel=0.02)
    assert mean[GpuMode.IDLE] == pytest.approx(IDLE_W, rel=0.02)
    assert mean[GpuMode.CURTAILED] < 10.0
    # Ordering holds sample by sample too: the noise is bounded well below the gaps.
    for _ in range(100):
        assert (
            sim.sample(GpuMode.MINING, 1.0).power_w
            > sim.sample(GpuMode.INFERENCE, 0.05).power_w
            > sim.sample(GpuMode.IDLE, 0.0).power_w
            > sim.sample(GpuMode.CURTAILED, 0.0).power_w
        )


def test_inference_power_scales_with_utilization() -> None:
    sim = make_sim()
    powers = [sim.power_w(GpuMode.INFERENCE, u) for u in (0.0, 0.25, 0.5, 1.0)]
    assert powers == sorted(powers) and powers[0] > IDLE_W
    assert powers[-1] < sim.power_w(GpuMode.MINING, 0.0)


def test_temperature_rises_to_steady_state_and_cools_when_idle() -> None:
    clock = FakeClock()
    sim = make_sim(clock)
    start = sim.sample(GpuMode.IDLE, 0.0).temperature_c
    hot = run_for(sim, clock, GpuMode.MINING, 300)  # ten time constants
    steady = sim.steady_temperature_c(0.95 * TDP_W)
    temps = [s.temperature_c for s in hot]
    assert temps[10] > start + 5  # warming, visibly, within seconds
    assert temps[10] < temps[60] < steady + 1  # still approaching after a minute
    assert temps[-1] == pytest.approx(steady, abs=1.5)
    cool = run_for(sim, clock, GpuMode.IDLE, 300)
    assert cool[10].temperature_c < temps[-1] - 5
    assert cool[-1].temperature_c == pytest.approx(sim.steady_temperature_c(IDLE_W), abs=1.5)


def test_temperature_needs_time_to_change() -> None:
    clock = FakeClock()
    sim = make_sim(clock)
    before = sim.sample(GpuMode.IDLE, 0.0).temperature_c
    after = [sim.sample(GpuMode.MINING, 1.0).temperature_c for _ in range(50)]  # no time passes
    assert max(abs(t - before) for t in after) < 1.0  # only measurement noise


def test_values_bounded_and_labelled_simulated() -> None:
    clock = FakeClock()
    sim = make_sim(clock)
    assert isinstance(sim, TelemetrySource)
    assert sim.source == "simulated" and "SIMULATED" in repr(sim)
    for mode in GpuMode:
        for u in (0.0, 0.3, 1.0):
            clock.t += 5
            s = sim.sample(mode, u)
            assert 0.0 <= s.power_w <= TDP_W
            assert 20.0 <= s.temperature_c <= 25.0 + 50.0 + 1.0
            assert 0.0 <= s.utilization_pct <= 100.0
            assert s.memory_used_mb == RESIDENT_MB <= s.memory_total_mb == TOTAL_MB
            assert s.source == "simulated" and s.simulated
            assert s.at.tzinfo is not None
            d = s.to_dict()
            assert d["source"] == "simulated" and d["simulated"] is True
            assert d["at"].endswith("+00:00")


def test_bad_input_and_config_are_refused() -> None:
    sim = make_sim()
    for bad in (-0.5, 1.5, float("nan")):
        with pytest.raises(ValidationError):
            sim.sample(GpuMode.INFERENCE, bad)
    assert sim.sample("inference", 1.0 + 1e-9).utilization_pct == 100.0  # float noise absorbed
    with pytest.raises(ConfigError):
        SimulatedTelemetry("x", tdp_w=100, idle_w=200, memory_total_mb=10, resident_mb=1)
    with pytest.raises(ConfigError):
        SimulatedTelemetry("x", tdp_w=300, idle_w=50, memory_total_mb=10, resident_mb=20)


def test_seeded_runs_repeat() -> None:
    a, b = make_sim(FakeClock(), seed=3), make_sim(FakeClock(), seed=3)
    assert [a.sample(GpuMode.MINING, 1).power_w for _ in range(5)] == [
        b.sample(GpuMode.MINING, 1).power_w for _ in range(5)
    ]


def test_open_telemetry_falls_back_to_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    import hcp.fleet.telemetry as telemetry

    if nvml_available():  # on a GPU host, pretend the driver is missing
        monkeypatch.setattr(telemetry, "nvml_available", lambda: False)
    src = open_telemetry(0, "H100-SXM", TDP_W, IDLE_W, TOTAL_MB, RESIDENT_MB)
    assert isinstance(src, SimulatedTelemetry) and src.source == "simulated"
    assert (
        open_telemetry(None, "H100-SXM", TDP_W, IDLE_W, TOTAL_MB, RESIDENT_MB).source == "simulated"
    )
    off = open_telemetry(0, "H100-SXM", TDP_W, IDLE_W, TOTAL_MB, RESIDENT_MB, prefer_nvml=False)
    assert off.source == "simulated"


@pytest.mark.gpu
@pytest.mark.skipif(not nvml_available(), reason="GPU test: NVML unavailable (no NVIDIA driver)")
def test_nvml_telemetry_reads_a_real_gpu() -> None:
    from hcp.fleet.telemetry import NvmlTelemetry

    src = NvmlTelemetry(0)
    try:
        s = src.sample(GpuMode.IDLE, 0.0)
    finally:
        src.close()
    assert s.source == "nvml" and not s.simulated
    assert 0.0 < s.power_w < 2000.0
    assert 0.0 < s.temperature_c < 120.0
    assert 0.0 <= s.utilization_pct <= 100.0
    assert 0.0 < s.memory_used_mb <= s.memory_total_mb
    assert open_telemetry(0, "any", TDP_W, IDLE_W, TOTAL_MB, RESIDENT_MB).source == "nvml"
