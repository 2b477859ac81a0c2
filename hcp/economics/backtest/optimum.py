"""Perfect-foresight optimum: dynamic programming over the whole price history.

It sees every future price, pays the same switching costs (lost time x the revenue
rate of the mode switched into, priced at the hour of the switch) and respects the
same facility power caps as the policies. Identical devices of one facility are
interchangeable, so a facility's state is how many devices of each group are in
each mode; the DP runs per facility (caps are per facility, nothing else couples
them). Decisions are hourly like the policies', so the minimum residence in a mode
is one step for both.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hcp.economics.policy.profit import CURTAILED, MODES, FleetArrays
from hcp.errors import ValidationError

log = logging.getLogger(__name__)

MAX_STATES = 4000  # per facility; S x S transitions are evaluated every hour


@dataclass(frozen=True)
class OptimumResult:
    profit_usd: float
    switches: int
    modes: np.ndarray  # (T, n) mode index per device and hour
    hourly_profit: np.ndarray  # (T,) USD net of switching costs


def _compositions(total: int, parts: int) -> list[tuple[int, ...]]:
    """Every way to put ``total`` identical devices into ``parts`` modes."""
    out = []
    for cut in itertools.combinations(range(total + parts - 1), parts - 1):
        bounds = (-1, *cut, total + parts - 1)
        out.append(tuple(bounds[k + 1] - bounds[k] - 1 for k in range(parts)))
    return out


def perfect_foresight(
    arrays: FleetArrays,
    profit: np.ndarray,
    cost_into: np.ndarray,
    initial: np.ndarray,
) -> OptimumResult:
    """Best achievable plan. ``profit``/``cost_into``: (T, n, modes); ``initial``: mode per device."""
    T, n = profit.shape[0], arrays.n
    modes_out = np.zeros((T, n), dtype=np.int64)
    hourly = np.zeros(T)
    switches = 0
    for f in range(len(arrays.fac_names)):
        members = np.flatnonzero(arrays.fac == f)
        if members.size == 0:
            continue
        res = _facility_dp(arrays, f, members, profit, cost_into, initial)
        modes_out[:, members] = res[0]
        hourly += res[1]
        switches += res[2]
    return OptimumResult(float(hourly.sum()), switches, modes_out, hourly)


def _groups(arrays: FleetArrays, members: np.ndarray) -> list[np.ndarray]:
    key_rows: dict[tuple, list[int]] = {}
    for i in members.tolist():
        key = (bool(arrays.is_gpu[i]), int(arrays.model[i]), float(arrays.hashrate[i]),
               float(arrays.util[i]), float(arrays.switch_h[i]), tuple(arrays.it_w[i].tolist()),
               tuple(arrays.candidate[i].tolist()))
        key_rows.setdefault(key, []).append(i)
    return [np.array(v) for v in key_rows.values()]


def _facility_dp(
    arrays: FleetArrays,
    f: int,
    members: np.ndarray,
    profit: np.ndarray,
    cost_into: np.ndarray,
    initial: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int]:
    groups = _groups(arrays, members)
    # Modes each group may take: what the policy may choose, plus curtailment (the cap's lever).
    allowed = [np.flatnonzero(arrays.candidate[g[0]] | (np.arange(len(MODES)) == CURTAILED))
               for g in groups]
    per_group = [_compositions(len(g), len(m)) for g, m in zip(groups, allowed, strict=True)]
    n_states = int(np.prod([len(c) for c in per_group]))
    if n_states > MAX_STATES * 50:
        raise ValidationError(
            f"facility {arrays.fac_names[f]}: {n_states} joint states is too many for the exact "
            "perfect-foresight DP; backtest a smaller fleet (identical devices are grouped)"
        )
    G = len(groups)
    # counts[s, g, m]: devices of group g in mode m in joint state s.
    counts = np.zeros((n_states, G, len(MODES)), dtype=np.int64)
    for s, combo in enumerate(itertools.product(*per_group)):
        for g, comp in enumerate(combo):
            counts[s, g, allowed[g]] = comp
    reps = np.array([g[0] for g in groups])
    draw = (counts * arrays.grid_w[reps][None, :, :]).sum(axis=(1, 2))
    feasible = draw <= arrays.capacity_w[f] + 1e-9
    counts = counts[feasible]
    S = counts.shape[0]
    if S > MAX_STATES:
        raise ValidationError(f"facility {arrays.fac_names[f]}: {S} feasible joint states exceed "
                              f"{MAX_STATES}; backtest a smaller fleet")
    start = np.zeros((G, len(MODES)), dtype=np.int64)
    for g, rows in enumerate(groups):
        np.add.at(start[g], initial[rows], 1)
    flat = counts.reshape(S, -1)
    moved_in = np.maximum(flat[None, :, :] - flat[:, None, :], 0)  # (from, to, G*modes)
    T = profit.shape[0]
    state_profit = np.einsum("sk,tk->ts", flat, profit[:, reps, :].reshape(T, -1).clip(-1e12))
    group_cost = cost_into[:, reps, :].reshape(T, -1)
    # W[s]: best profit from hour t on, given the fleet is in state s during hour t.
    choice = np.zeros((T, S), dtype=np.int32)  # choice[t][s]: state for hour t after s at t-1
    value = state_profit[T - 1].copy()
    for t in range(T - 2, -1, -1):
        q = value[None, :] - moved_in @ group_cost[t + 1]
        choice[t + 1] = q.argmax(axis=1)
        value = state_profit[t] + q[np.arange(S), choice[t + 1]]
    # The initial configuration may lie outside the feasible set: hour 0 moves out of it.
    init_flat = start.reshape(-1)
    first_cost = np.maximum(flat - init_flat[None, :], 0) @ group_cost[0]
    s = int(np.argmax(value - first_cost))
    path = [s]
    for t in range(1, T):
        s = int(choice[t][s])
        path.append(s)
    path_arr = np.array(path)
    hourly = state_profit[np.arange(T), path_arr].copy()
    hourly[0] -= first_cost[path_arr[0]]
    steps = moved_in[path_arr[:-1], path_arr[1:]]
    hourly[1:] -= np.einsum("tk,tk->t", steps, group_cost[1:])
    switches = int(np.maximum(flat[path_arr[0]] - init_flat, 0).sum() + steps.sum())
    modes = _expand(groups, allowed, counts, path_arr, len(members), members, initial)
    return modes, hourly, switches


def _expand(groups: Sequence[np.ndarray], allowed: Sequence[np.ndarray], counts: np.ndarray,
            path: np.ndarray, n_members: int, members: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Per-device modes from per-group counts.

    Which of several identical devices changes mode is arbitrary for the profit; devices
    keep their previous mode whenever the counts allow, so a device's own history shows
    exactly as many switches as the plan pays for.
    """
    pos = {d: k for k, d in enumerate(members.tolist())}
    out = np.zeros((len(path), n_members), dtype=np.int64)
    for g, rows in enumerate(groups):
        cols = [pos[d] for d in rows.tolist()]
        prev = start[rows].tolist()
        for t, s in enumerate(path.tolist()):
            left = dict(zip(allowed[g].tolist(), counts[s, g, allowed[g]].tolist(), strict=True))
            now: list[int | None] = []
            for m in prev:
                if left.get(m, 0) > 0:
                    left[m] -= 1
                    now.append(m)
                else:
                    now.append(None)
            spare = [m for m, c in left.items() for _ in range(c)]
            filled = [m if m is not None else spare.pop() for m in now]
            out[t, cols] = filled
            prev = filled
    return out
