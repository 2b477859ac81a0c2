"""Facility power caps: when the wanted draw exceeds a site's MW cap, the most profitable run."""

from __future__ import annotations

import numpy as np

from hcp.policy.profit import CURTAILED, FleetArrays


def enforce_caps(
    arrays: FleetArrays, desired: np.ndarray, profit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(modes after the cap, mask of devices curtailed by it).

    Within an over-cap facility devices are admitted by profit per grid watt, the
    order that maximizes profit under a power budget (fractional knapsack), until
    the next one would exceed the cap; the rest are curtailed (0 W). The order is
    a pure function of prices, so identical ticks give identical allocations.
    """
    n = arrays.n
    rows = np.arange(n)
    draw = arrays.grid_w[rows, desired]
    per_fac = np.bincount(arrays.fac, weights=draw, minlength=len(arrays.capacity_w))
    if not (per_fac > arrays.capacity_w).any():
        return desired, np.zeros(n, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = np.where(draw > 0, profit[rows, desired] / draw, np.inf)
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
    final = np.where(blocked, CURTAILED, desired)
    return final, blocked & (desired != CURTAILED)
