"""The switching policy for a whole fleet, vectorized over devices with numpy."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from hcp.economics.devices import DeviceEconomics, FacilityEconomics, from_fleet_spec
from hcp.economics.market.tick import PriceTick
from hcp.economics.policy.cap import enforce_caps, held_over_cap
from hcp.economics.policy.decision import Decision, DecisionReason
from hcp.economics.policy.params import PolicyParams
from hcp.economics.policy.profit import CURTAILED, IDLE, MINING, MODE_INDEX, MODES, FleetArrays
from hcp.errors import ValidationError
from hcp.fleet.modes import GpuMode

if TYPE_CHECKING:
    from hcp.fleet.spec import FleetSpec

log = logging.getLogger(__name__)

_NO_CANDIDATE = -1
_UNKNOWN = -1


@dataclass(frozen=True)
class Preemption:
    """A held device (a customer's rental or workload) that must stop for its facility's cap."""

    device_id: str
    facility: str
    draw_w: float  # the grid draw its stop frees
    reason: str


@dataclass(frozen=True)
class StepResult:
    """One decision step as arrays (what the backtest and the benchmark consume)."""

    modes: np.ndarray  # mode index per device after the step
    changed: np.ndarray  # bool per device
    capped: np.ndarray  # bool: curtailed by a facility power cap
    profit: np.ndarray  # (n, modes) expected USD/h at this tick
    revenue: np.ndarray  # (n, modes)
    switch_cost: np.ndarray  # (n, modes) USD to switch into each mode
    gain: np.ndarray  # expected USD/h gained by the change (0 where unchanged)


class FleetPolicy:
    """Chooses each device's mode; keeps dwell streaks between calls."""

    def __init__(
        self,
        devices: Sequence[DeviceEconomics],
        facilities: Sequence[FacilityEconomics],
        params: PolicyParams,
    ) -> None:
        self.params = params
        self.arrays = FleetArrays(devices, facilities, params.gpu_may_power_down,
                                  params.gpu_may_rent)
        n = self.arrays.n
        self._cand = np.full(n, _NO_CANDIDATE, dtype=np.int64)  # mode whose advantage is streaking
        self._since = np.zeros(n)  # epoch seconds the streak began
        self._id_index = {d: i for i, d in enumerate(self.arrays.ids)}
        # The held devices the last ``decide`` found must stop for a facility cap to hold.
        self.last_preemptions: list[Preemption] = []

    @classmethod
    def from_fleet_spec(cls, spec: FleetSpec, params: PolicyParams) -> FleetPolicy:
        devices, facilities = from_fleet_spec(spec, params.economics)
        return cls(devices, facilities, params)

    @property
    def device_ids(self) -> tuple[str, ...]:
        return self.arrays.ids

    # --- the typed interface -----------------------------------------------------

    def decide(
        self, tick: PriceTick, current_modes: Mapping[str, str] | np.ndarray, now: datetime,
        fixed: Collection[str] = (),
    ) -> list[Decision]:
        """Only the devices whose mode should change now, each with its reason and expected gain.

        ``current_modes`` maps device id to mode; a caller that keeps the fleet's modes as
        an index array in ``device_ids`` order (see ``mode_indices``) may pass that
        instead and skip converting 100,000 strings on every tick. ``fixed`` names the
        devices a customer's job or workload holds: they keep their mode, and a facility
        cap is met from the other devices.
        """
        if isinstance(current_modes, np.ndarray):
            if current_modes.shape != (self.arrays.n,):
                raise ValidationError("mode array must have one entry per device")
            current = current_modes.astype(np.int64, copy=False)
        else:
            current = self.mode_indices(current_modes)
        mask = self.fixed_mask(fixed) if fixed else None
        step = self.step(tick, current, now, mask)
        self.last_preemptions = self.preemptions(step, mask) if mask is not None else []
        return self.decisions(tick, current, step)

    def preemptions(self, step: StepResult, fixed: np.ndarray) -> list[Preemption]:
        """Where the held devices alone exceed a facility's cap, the fewest of them, least
        profit per grid watt first (the cap's own merit order), whose stop brings it back
        under: an explicit preemption the caller must carry out and record, never silent."""
        a = self.arrays
        out: list[Preemption] = []
        for f in held_over_cap(a, step.modes, fixed).tolist():
            rows = np.flatnonzero(fixed & (a.fac == f))
            draw = a.grid_w[rows, step.modes[rows]]
            with np.errstate(divide="ignore", invalid="ignore"):
                density = np.where(draw > 0, step.profit[rows, step.modes[rows]] / draw, np.inf)
            excess = float(draw.sum() - a.capacity_w[f])
            for k in np.lexsort((rows, density)).tolist():
                if excess <= 1e-9:
                    break
                i = int(rows[k])
                out.append(Preemption(a.ids[i], a.fac_names[f], float(draw[k]),
                                      f"facility {a.fac_names[f]} power cap: held GPUs draw "
                                      f"{draw.sum():.0f} W over its {a.capacity_w[f]:.0f} W"))
                excess -= float(draw[k])
        return out

    def fixed_mask(self, device_ids: Collection[str]) -> np.ndarray:
        mask = np.zeros(self.arrays.n, dtype=bool)
        for d in device_ids:
            i = self._id_index.get(d)
            if i is not None:
                mask[i] = True
        return mask

    def mode_indices(self, current_modes: Mapping[str, str]) -> np.ndarray:
        """Mode index per device; devices absent from the mapping are unknown (-1)."""
        get, lookup = current_modes.get, MODE_INDEX.get
        # Fast path: exact mode values (GpuMode members hash like their values).
        out = np.fromiter((lookup(get(d, ""), -2) for d in self.arrays.ids), dtype=np.int64,
                          count=self.arrays.n)
        for i in np.flatnonzero(out == -2).tolist():  # absent, or spelled loosely
            raw = get(self.arrays.ids[i])
            out[i] = _UNKNOWN if raw is None else MODE_INDEX[GpuMode.parse(raw).value]
        return out

    def decisions(self, tick: PriceTick, current: np.ndarray, step: StepResult) -> list[Decision]:
        a = self.arrays
        out: list[Decision] = []
        for i in np.flatnonzero(step.changed).tolist():
            frm, to = int(current[i]), int(step.modes[i])
            out.append(
                Decision(
                    decision_id=Decision.make_id(tick.at, a.ids[i]),
                    device_id=a.ids[i],
                    facility=a.fac_names[a.fac[i]],
                    kind="gpu" if a.is_gpu[i] else "asic",
                    from_mode=MODES[frm].value if frm >= 0 else "UNKNOWN",
                    to_mode=MODES[to].value,
                    reason=self._reason(i, frm, to, step),
                    expected_gain_usd_per_hour=float(step.gain[i]),
                    tick_at=tick.at,
                )
            )
        return out

    def _reason(self, i: int, frm: int, to: int, step: StepResult) -> DecisionReason:
        if step.capped[i]:
            return DecisionReason.POWER_CAP
        if frm < 0 or not self.arrays.possible[i, frm]:
            return DecisionReason.INITIAL
        if to in (CURTAILED, IDLE) and step.profit[i, frm] < 0:
            return DecisionReason.CURTAIL_POWER_PRICE
        if frm in (CURTAILED, IDLE) and to == MINING and not self.arrays.is_gpu[i]:
            return DecisionReason.RESUME_POWER_PRICE
        return DecisionReason.BETTER_PROFIT

    # --- the vectorized core -----------------------------------------------------

    def step(self, tick: PriceTick, current: np.ndarray, now: datetime,
             fixed: np.ndarray | None = None) -> StepResult:
        a, p = self.arrays, self.params
        rows = np.arange(a.n)
        profit, rev = a.profit(tick)
        cost_into = a.switch_cost(rev)
        valid = (current >= 0) & a.possible[rows, np.maximum(current, 0)]
        cur = np.where(valid, current, MINING)
        choice = profit + a.not_candidate
        best = np.argmax(choice, axis=1)
        p_best = choice[rows, best]
        p_cur = np.where(valid, profit[rows, cur], -np.inf)
        gain = p_best - p_cur
        # The advantage is measured against the larger of the two modes' profits and revenues,
        # so for an on/off choice the threshold reads "this far past break-even".
        r_best = rev[rows, best]
        r_cur = np.where(valid, rev[rows, cur], 0.0)
        ref = np.maximum(np.maximum(np.abs(p_best), np.abs(np.where(valid, p_cur, 0.0))),
                         np.maximum(r_best, r_cur))
        wants = valid & (best != cur) & (gain > np.maximum(p.threshold_pct / 100.0 * ref,
                                                           p.min_gain_usd_per_hour))
        if fixed is not None:
            fixed = fixed & valid  # a held device in a mode the policy cannot price is not pinned
            wants &= ~fixed
        # Dwell streaks: how long the same better mode has been ahead past the threshold.
        t = now.timestamp()
        restart = wants & (self._cand != best)
        self._since = np.where(restart, t, self._since)
        self._cand = np.where(wants, best, _NO_CANDIDATE)
        held = wants & (t - self._since >= p.dwell_s)
        covers = np.ones(a.n, dtype=bool)
        if p.cover_switching_cost:
            c_go = cost_into[rows, best]
            covers = gain * (p.payback_s / 3600.0) >= c_go
        if p.use_forecast and tick.power_forecast_usd_per_mwh:
            f_held, f_covers, known = self._forecast_rules(tick, rev, cur, best, cost_into, wants)
            held = held | (known & f_held)
            if p.cover_switching_cost:
                covers = np.where(known, f_covers, covers)
        switch = wants & held & covers
        desired = np.where(valid, np.where(switch, best, cur), best)
        final, capped = enforce_caps(a, desired, profit, fixed)
        if fixed is not None:
            for f in held_over_cap(a, final, fixed).tolist():
                log.warning("facility %s: GPUs held by customers alone exceed its power cap; only "
                            "an explicit preemption of a rental can meet it", a.fac_names[f])
        changed = final != current
        self._cand = np.where(changed, _NO_CANDIDATE, self._cand)
        base = np.where(valid, p_cur, 0.0)
        realized_gain = np.where(changed, profit[rows, final] - base, 0.0)
        return StepResult(final, changed, capped & changed, profit, rev, cost_into, realized_gain)

    def _forecast_rules(
        self,
        tick: PriceTick,
        rev: np.ndarray,
        cur: np.ndarray,
        best: np.ndarray,
        cost_into: np.ndarray,
        wants: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hysteresis decided on published prices: does the advantage hold, and does it pay?

        The plan compared is "switch now, switch back after k hours" for every k in the
        published horizon (or stay switched to its end); BTC and GPU prices are held at
        their current level, only power prices are known ahead.
        """
        a, p = self.arrays, self.params
        held = np.zeros(a.n, dtype=bool)
        covers = np.zeros(a.n, dtype=bool)
        prices, lengths = a.forecast_prices(tick)
        known = (lengths[a.fac] > 0) & wants
        idx = np.flatnonzero(known)
        if idx.size == 0:
            return held, covers, known
        now_price = a.power_price(tick)[a.fac[idx]]
        d_rev = rev[idx, best[idx]] - rev[idx, cur[idx]]
        d_w = (a.grid_w[idx, best[idx]] - a.grid_w[idx, cur[idx]]) / 1e6
        path = np.vstack([now_price[None, :], prices[:, a.fac[idx]]])  # (H+1, k)
        adv = d_rev[None, :] - d_w[None, :] * path
        horizon = lengths[a.fac[idx]] + 1
        steps = np.arange(path.shape[0])[:, None]
        inside = steps < horizon[None, :]
        adv = np.where(inside & ~np.isnan(adv), adv, 0.0)
        cum = np.cumsum(adv, axis=0)
        back = cost_into[idx, cur[idx]]
        go = cost_into[idx, best[idx]]
        ends_inside = steps < (horizon - 1)[None, :]
        value = cum - go[None, :] - np.where(ends_inside, back[None, :], 0.0)
        value = np.where(inside, value, -np.inf)
        covers[idx] = value.max(axis=0) > 0
        run = np.cumprod(adv > 0, axis=0).sum(axis=0)  # consecutive ahead hours from now
        held[idx] = (run * 3600.0 >= p.dwell_s) | (run >= horizon)
        return held, covers, known

    # --- persistence ----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Dwell streaks by device id, JSON-serializable, to survive an optimizer restart."""
        live = np.flatnonzero(self._cand != _NO_CANDIDATE)
        return {
            "version": 1,
            "streaks": {
                self.arrays.ids[i]: {"mode": MODES[int(self._cand[i])].value,
                                     "since": float(self._since[i])}
                for i in live.tolist()
            },
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        if d.get("version") != 1:
            raise ValidationError("unsupported policy state version", version=d.get("version"))
        self._cand[:] = _NO_CANDIDATE
        self._since[:] = 0.0
        for device_id, s in dict(d.get("streaks", {})).items():
            i = self._id_index.get(device_id)
            if i is None:
                log.info("policy state names device %s, no longer in the fleet", device_id)
                continue
            self._cand[i] = MODE_INDEX[GpuMode.parse(s["mode"]).value]
            self._since[i] = float(s["since"])
