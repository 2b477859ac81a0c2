"""Per-device and per-facility economic figures, built from a fleet spec plus explicit assumptions."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hcp.errors import ValidationError

if TYPE_CHECKING:
    from hcp.fleet.spec import FleetSpec

log = logging.getLogger(__name__)

# SHA-256d rate of hcp's own numba kernel on ONE CPU core (python -m bench.mining,
# hashrate_numba, on the development machine). Simulated GPUs of the local fleet
# mine with exactly this kernel on CPU, so this is their honest figure.
DEFAULT_GPU_HASHRATE_HS = 4.3e6

# Figures measured with hcp's torch kernel on real GPUs (python -m bench.mining on
# the GPU, hashrate_torch_cuda). None has been measured and recorded yet: until one
# is, every GPU uses ``EconomicsParams.gpu_hashrate_hs`` (explicit, printed by the
# backtest). Even 1,000x the CPU figure earns under a cent per hour at 2022 prices.
MEASURED_GPU_HASHRATE_HS: Mapping[str, float] = {}


@dataclass(frozen=True)
class EconomicsParams:
    """Every assumption behind a device's expected revenue and costs, explicit and printable."""

    gpu_utilization: float = 0.6  # share of an hour an inference/rental GPU is sold
    gpu_hashrate_hs: float = DEFAULT_GPU_HASHRATE_HS  # for models absent from the measured table
    gpu_hashrate_overrides: Mapping[str, float] = field(default_factory=dict)  # model -> H/s
    gpu_switch_seconds: float = 60.0  # drain a batch, swap context, health check, warm caches
    asic_switch_seconds: float = 600.0  # ASIC power-up and hash-board ramp after a curtailment
    # Renting a GPU out on the marketplace: the share of an hour an offered GPU is rented (the
    # marketplace's demand), and the platform's cut of what the renter pays (the marketplace's
    # PLATFORM_FEE_BPS: the provider keeps 98 %).
    gpu_rental_occupancy: float = 0.6
    rental_fee_bps: int = 200

    def __post_init__(self) -> None:
        if not 0.0 <= self.gpu_utilization <= 1.0:
            raise ValidationError("gpu_utilization must be within [0, 1]", field="gpu_utilization")
        if not 0.0 <= self.gpu_rental_occupancy <= 1.0:
            raise ValidationError("gpu_rental_occupancy must be within [0, 1]",
                                  field="gpu_rental_occupancy")
        if not 0 <= self.rental_fee_bps <= 10_000:
            raise ValidationError("rental_fee_bps must be within [0, 10000]", field="rental_fee_bps")
        if self.gpu_hashrate_hs < 0 or self.gpu_switch_seconds < 0 or self.asic_switch_seconds < 0:
            raise ValidationError("hashrates and switch times must not be negative")

    def gpu_hashrate(self, model: str) -> float:
        if model in self.gpu_hashrate_overrides:
            return float(self.gpu_hashrate_overrides[model])
        return float(MEASURED_GPU_HASHRATE_HS.get(model, self.gpu_hashrate_hs))

    def describe(self) -> dict[str, Any]:
        return {
            "gpu_utilization": self.gpu_utilization,
            "gpu_hashrate_hs": self.gpu_hashrate_hs,
            "gpu_hashrate_source": "hcp numba SHA-256d kernel, one CPU core (measured)",
            "gpu_hashrate_overrides": dict(self.gpu_hashrate_overrides),
            "gpu_switch_seconds": self.gpu_switch_seconds,
            "asic_switch_seconds": self.asic_switch_seconds,
            "gpu_rental_occupancy": self.gpu_rental_occupancy,
            "rental_fee_bps": self.rental_fee_bps,
            "gpu_rental_revenue": "GPU price level per hour x occupancy x (1 - fee); power: "
                                  "idle_w + occupancy x (power_w - idle_w)",
        }


@dataclass(frozen=True)
class DeviceEconomics:
    device_id: str
    facility: str
    kind: str  # "gpu" or "asic"
    model: str
    active_w: float  # IT power mining / serving flat out
    idle_w: float  # IT power powered on, doing nothing (0 for ASICs: they only curtail)
    hashrate_hs: float
    utilization: float  # inference share (0 for ASICs)
    switch_seconds: float
    rental_occupancy: float = 0.0  # share of an hour it is rented when offered (0 for ASICs)
    rental_fee_bps: int = 200  # the platform's cut of a rental

    def __post_init__(self) -> None:
        if self.kind not in ("gpu", "asic"):
            raise ValidationError(f"device kind must be 'gpu' or 'asic', got {self.kind!r}")
        if self.active_w <= 0 or self.idle_w < 0 or self.hashrate_hs < 0:
            raise ValidationError(f"device {self.device_id}: power and hashrate must be positive")

    @property
    def inference_w(self) -> float:
        """Mean IT draw serving: idle floor plus the busy share of the dynamic range."""
        return self.idle_w + self.utilization * (self.active_w - self.idle_w)

    @property
    def rented_w(self) -> float:
        """Mean IT draw offered for rent: flat out while rented, idle while waiting for one."""
        return self.idle_w + self.rental_occupancy * (self.active_w - self.idle_w)


@dataclass(frozen=True)
class FacilityEconomics:
    name: str
    capacity_w: float  # grid draw cap (IT x PUE must stay under it)
    pue: float

    def __post_init__(self) -> None:
        if self.capacity_w <= 0 or self.pue < 1.0:
            raise ValidationError(f"facility {self.name}: capacity must be > 0 and PUE >= 1")


def from_fleet_spec(
    spec: FleetSpec, params: EconomicsParams | None = None
) -> tuple[list[DeviceEconomics], list[FacilityEconomics]]:
    params = params or EconomicsParams()
    devices: list[DeviceEconomics] = []
    facilities = [
        FacilityEconomics(name=f.name, capacity_w=f.capacity_w, pue=f.pue) for f in spec.facilities
    ]
    for fac in spec.facilities:
        devices.extend(
            DeviceEconomics(
                device_id=g.id,
                facility=fac.name,
                kind="gpu",
                model=g.model,
                active_w=g.power_w,
                idle_w=g.idle_w,
                hashrate_hs=params.gpu_hashrate(g.model),
                utilization=params.gpu_utilization,
                switch_seconds=params.gpu_switch_seconds,
                rental_occupancy=params.gpu_rental_occupancy,
                rental_fee_bps=params.rental_fee_bps,
            )
            for g in fac.gpus
        )
        devices.extend(
            DeviceEconomics(
                device_id=a.id,
                facility=fac.name,
                kind="asic",
                model=a.model,
                active_w=a.power_w,
                idle_w=0.0,
                hashrate_hs=a.hashrate_ths * 1e12,
                utilization=0.0,
                switch_seconds=params.asic_switch_seconds,
            )
            for a in fac.asics
        )
    return devices, facilities
