"""The formulas, one function each, checked by hand in the unit tests.

Expected bitcoin per hash: a hash meets the target with probability
1 / (difficulty * 2**32) (difficulty 1 is a target of 0xffff * 2**208, about
2**224, so 2**256 / 2**224 = 2**32 hashes per block at difficulty 1), and a
block pays subsidy + fees. Dropping either the 2**32 or the fees (as the
reference design does) gets the revenue wrong by orders of magnitude.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

HASHES_PER_DIFFICULTY = 2**32
MICRO_USD_PER_USD = 1_000_000
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86_400.0


def btc_per_hash(subsidy_btc: float, fees_btc: float, difficulty: float) -> float:
    """Expected BTC earned per SHA-256d hash: (subsidy + fees) / (difficulty * 2**32)."""
    if difficulty <= 0:
        raise ValueError("difficulty must be positive")
    return (subsidy_btc + fees_btc) / (difficulty * HASHES_PER_DIFFICULTY)


def mining_revenue_usd_per_hour(
    hashrate_hs: float, btc_usd: float, subsidy_btc: float, fees_btc: float, difficulty: float
) -> float:
    return hashrate_hs * SECONDS_PER_HOUR * btc_per_hash(subsidy_btc, fees_btc, difficulty) * btc_usd


def hashprice_usd_per_th_day(
    btc_usd: float, subsidy_btc: float, fees_btc: float, difficulty: float
) -> float:
    """USD one TH/s earns per day, the figure miners quote as "hashprice"."""
    return 1e12 * SECONDS_PER_DAY * btc_per_hash(subsidy_btc, fees_btc, difficulty) * btc_usd


def power_cost_usd_per_hour(it_watts: float, pue: float, usd_per_mwh: float) -> float:
    """Grid cost of running ``it_watts`` of IT load for an hour: W x PUE x price."""
    return it_watts * pue / 1e6 * usd_per_mwh


def gpu_revenue_usd_per_hour(rental_usd_per_hour: float, utilization: float) -> float:
    """Expected rental/inference revenue: the hourly price earned for the utilized share."""
    if not 0.0 <= utilization <= 1.0:
        raise ValueError("utilization must be within [0, 1]")
    return rental_usd_per_hour * utilization


def asic_breakeven_usd_per_mwh(
    hashrate_hs: float,
    it_watts: float,
    pue: float,
    btc_usd: float,
    subsidy_btc: float,
    fees_btc: float,
    difficulty: float,
) -> float:
    """Power price above which mining loses money and the ASIC should be curtailed."""
    revenue = mining_revenue_usd_per_hour(hashrate_hs, btc_usd, subsidy_btc, fees_btc, difficulty)
    return revenue / (it_watts * pue / 1e6)


def switching_cost_usd(lost_seconds: float, revenue_usd_per_hour: float) -> float:
    """Revenue forgone while a device changes mode and earns nothing."""
    return lost_seconds / SECONDS_PER_HOUR * max(revenue_usd_per_hour, 0.0)


def to_micro_usd(usd: float | Decimal | str) -> int:
    """Integer micro-USD for anything recorded as money (half-even, via Decimal)."""
    amount = Decimal(str(usd)) * MICRO_USD_PER_USD
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
