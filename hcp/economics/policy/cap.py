"""Facility power caps: when the wanted draw exceeds a site's MW cap, the most profitable run."""

from __future__ import annotations

import numpy as np

from hcp.economics.policy.profit import CURTAILED, FleetArrays


def enforce_caps(
    arrays: FleetArrays, desired: np.ndarray, profit: np.ndarray,
    fixed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(modes after the cap, mask of devices curtailed by it).

    Within an over-cap facility devices are admitted by profit per grid watt, the
    order that maximizes profit under a power budget (fractional knapsack), until
    the next one would exceed the cap; the rest are curtailed (0 W). The order is
    a pure function of prices, so identical ticks give identical allocations.
    ``fixed`` devices (held by a customer's job or workload) are admitted first and
    never curtailed: the cap is met from the others (``held_over_cap`` says where it
    cannot be).
    """
    n = arrays.n
    rows = np.arange(n)
    draw = arrays.grid_w[rows, desired]
    per_fac = np.bincount(arrays.fac, weights=draw, minlength=len(arrays.capacity_w))
    if not (per_fac > arrays.capacity_w).any():
        return desired, np.zeros(n, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = np.where(draw > 0, profit[rows, desired] / draw, np.inf)
    if fixed is not None:
        density = np.where(fixed, np.inf, density)
    # Sort by facility, then density descending; lexsort is stable, so ties keep row order.
    order = np.lexsort((-density, arrays.fac))
    fac_sorted = arrays.fac[order]
    cum = np.cumsum(draw[order])
    # Subtract each facility's running total at its first row to restart the sum per facility.
    draw_sorted = draw[order]
    starts = np.flatnonzero(np.concatenate(([True], fac_sorted[1:] != fac_sorted[:-1])))
    seg_len = np.diff(np.append(starts, n))
    offsets = np.repeat(cum[starts] - draw_sorted[starts], seg_len)
    within = cum - offsets
    # Once a device does not fit, nobody after it in the same facility runs: admission
    # stays a prefix of the merit order, so a small device never jumps a larger, better one.
    over = within > arrays.capacity_w[fac_sorted] + 1e-9
    # index+1 of the latest over-cap row seen so far (monotone across facilities)
    last_over = np.maximum.accumulate(np.where(over, np.arange(1, n + 1), 0))
    seg_start_idx = np.repeat(starts, seg_len)
    blocked_sorted = (last_over > seg_start_idx) & (draw_sorted > 0)
    blocked = np.zeros(n, dtype=bool)
    blocked[order] = blocked_sorted
    if fixed is not None:
        blocked &= ~fixed
    final = np.where(blocked, CURTAILED, desired)
    return final, blocked & (desired != CURTAILED)


def held_over_cap(arrays: FleetArrays, modes: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Facility indices whose fixed (held) devices alone draw more than the cap: there the cap
    can only be met by preempting a customer, which the policy never does by itself."""
    draw = np.where(fixed, arrays.grid_w[np.arange(arrays.n), modes], 0.0)
    per_fac = np.bincount(arrays.fac, weights=draw, minlength=len(arrays.capacity_w))
    return np.flatnonzero(per_fac > arrays.capacity_w + 1e-9)
