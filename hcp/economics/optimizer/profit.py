"""Realized profit: what the modes that actually held earned over a period, in micro-USD.

Rates come from the policy's own economics (USD per hour per device per mode) at the prices
in effect over the period; which mode held when comes from the devices' committed mode
changes in the event log, so an operator's or the router's switch mid-period is counted too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from hcp.economics import to_micro_usd
from hcp.economics.optimizer.types import ModeChange


class ProfitModel(Protocol):
    """Expected USD per hour of each device in each mode at a tick's prices."""

    def rates(self, tick: Any) -> Mapping[str, Mapping[str, float]]: ...

    def revenue_rates(self, tick: Any) -> Mapping[str, Mapping[str, float]]:
        """Revenue only (USD/h): what a switch's pause loses in the mode it enters."""
        ...


def mode_segments(mode_now: str, changes: Iterable[ModeChange], start: datetime, end: datetime
                  ) -> list[tuple[str, float]]:
    """(mode, seconds) spans of one device over [start, end) given its changes after ``start``.

    Before its first change the device was in that change's ``from_mode``; with no change it
    held ``mode_now`` throughout. Changes outside the window are clamped into it.
    """
    out: list[tuple[str, float]] = []
    t, mode = start, None
    for c in sorted(changes, key=lambda c: c.at):
        at = min(max(c.at, start), end)
        if mode is None:
            mode = c.from_mode
        if at > t:
            out.append((mode, (at - t).total_seconds()))
            t = at
        mode = c.to_mode
    if mode is None:
        mode = mode_now
    if end > t:
        out.append((mode, (end - t).total_seconds()))
    return out


def realized_profit_micro_usd(
    rates: Mapping[str, Mapping[str, float]],
    modes_now: Mapping[str, str],
    changes: Iterable[ModeChange],
    start: datetime,
    end: datetime,
    revenue: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, int]:
    """Per device, integer micro-USD earned over [start, end) by the modes that held.

    The backtest's formulas: profit rate of each mode (revenue minus grid power at the
    prices in effect) times the time it held, less each switch's cost, the time the switch
    paused the device times the revenue rate of the mode it entered (measured here, the
    device's own ``total_ms``, where the backtest assumes a switch time). Devices without
    rates (not in the policy's fleet) are left out; a mode without a rate counts as zero.
    """
    by_device: dict[str, list[ModeChange]] = {}
    for c in changes:
        by_device.setdefault(c.device_id, []).append(c)
    out: dict[str, int] = {}
    for device_id, per_mode in rates.items():
        mode_now = modes_now.get(device_id)
        if mode_now is None:
            continue
        usd = 0.0
        mine = by_device.get(device_id, ())
        for mode, seconds in mode_segments(mode_now, mine, start, end):
            rate = float(per_mode.get(mode, 0.0))
            if math.isfinite(rate):
                usd += rate * seconds / 3600.0
        if revenue is not None:
            rev = revenue.get(device_id, {})
            for c in mine:
                if start <= c.at < end and c.total_ms:
                    gain = float(rev.get(c.to_mode, 0.0))
                    if math.isfinite(gain):
                        usd -= max(gain, 0.0) * c.total_ms / 3.6e6
        out[device_id] = to_micro_usd(usd)
    return out
