"""Unit economics of mining and inference: revenue, power cost, break-even, switching cost."""

from hcp.economics.devices import (
    DEFAULT_GPU_HASHRATE_HS,
    MEASURED_GPU_HASHRATE_HS,
    DeviceEconomics,
    EconomicsParams,
    FacilityEconomics,
    from_fleet_spec,
)
from hcp.economics.formulas import (
    HASHES_PER_DIFFICULTY,
    MICRO_USD_PER_USD,
    asic_breakeven_usd_per_mwh,
    btc_per_hash,
    gpu_revenue_usd_per_hour,
    hashprice_usd_per_th_day,
    mining_revenue_usd_per_hour,
    power_cost_usd_per_hour,
    switching_cost_usd,
    to_micro_usd,
)

__all__ = [
    "DEFAULT_GPU_HASHRATE_HS",
    "HASHES_PER_DIFFICULTY",
    "MEASURED_GPU_HASHRATE_HS",
    "MICRO_USD_PER_USD",
    "DeviceEconomics",
    "EconomicsParams",
    "FacilityEconomics",
    "asic_breakeven_usd_per_mwh",
    "btc_per_hash",
    "from_fleet_spec",
    "gpu_revenue_usd_per_hour",
    "hashprice_usd_per_th_day",
    "mining_revenue_usd_per_hour",
    "power_cost_usd_per_hour",
    "switching_cost_usd",
    "to_micro_usd",
]
