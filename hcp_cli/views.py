"""Rich renderings of fleet state for the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table

_MODE_STYLE = {"MINING": "yellow", "INFERENCE": "cyan", "IDLE": "white", "CURTAILED": "red",
               "RENTED": "magenta"}


def _si(value: float, unit: str) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:.1f} {unit}"


def gpu_table(gpus: list[dict[str, Any]]) -> Table:
    t = Table(title="GPUs", expand=False)
    for col in ("device", "facility", "mode", "hashrate", "hashes", "shares", "power", "temp",
                "util", "mem", "telemetry", "gen"):
        t.add_column(col, justify="right" if col not in ("device", "facility", "mode", "telemetry") else "left")
    for g in sorted(gpus, key=lambda x: x["device_id"]):
        tel = g["telemetry"]
        mode = g["mode"]
        if g.get("availability", "up") != "up":
            # Its actor is restarting: say so, with what was last seen (Ray brings it back in
            # its committed mode).
            t.add_row(g["device_id"], g.get("facility", ""), f"[red]RESTARTING[/] (was {mode})",
                      "-", f"{g['hashes_done']:,}", str(g["shares_found"]),
                      f"{tel['power_w']:.0f} W" if tel else "-", "-", "-", "-",
                      "unavailable", str(g.get("generation", "")))
            continue
        t.add_row(
            g["device_id"], g.get("facility", ""),
            f"[{_MODE_STYLE.get(mode, 'white')}]{mode}[/]"
            + (f" ({escape(g['held_by'])})" if g.get("held_by") else ""),
            _si(g["hashrate_hs"], "H/s"), f"{g['hashes_done']:,}", str(g["shares_found"]),
            f"{tel['power_w']:.0f} W", f"{tel['temperature_c']:.0f} °C", f"{100 * g['utilization']:.0f}%",
            f"{tel['memory_used_mb'] / 1024:.1f}/{tel['memory_total_mb'] / 1024:.0f} GiB",
            tel["source"] + (" (model)" if tel["source"] == "simulated" else ""), str(g.get("generation", "")),
        )
    return t


def facility_table(reports: list[dict[str, Any]]) -> Table:
    t = Table(title="Facilities")
    for col in ("facility", "power (×PUE)", "cap", "headroom", "GPU modes", "ASIC modes", "ASIC TH/s"):
        t.add_column(col)
    for r in reports:
        style = "red" if r["over_cap"] else "green"
        t.add_row(
            r["facility"], f"[{style}]{_si(r['facility_power_w'], 'W')}[/]", _si(r["capacity_w"], "W"),
            _si(r["headroom_w"], "W"), _modes(r["gpu_modes"]), _modes(r["asic_modes"]),
            f"{r['asic_hashrate_ths']:.0f}",
        )
    return t


def _modes(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def unavailable_facility(name: str, detail: str) -> dict[str, Any]:
    """A facility row for a facility actor that did not answer (shown, never fatal)."""
    return {"facility": name, "facility_power_w": 0.0, "capacity_w": 0.0, "headroom_w": 0.0,
            "over_cap": False, "gpu_modes": {}, "asic_modes": {"UNAVAILABLE": 1},
            "asic_hashrate_ths": 0.0, "gpus": [], "asics": {}, "detail": detail}


def switch_line(r: Any) -> str:
    """One line on what a switch did (a ``SwitchResult``): GPUs by phase, ASICs by power."""
    dev, src, dst = r.device_id, r.from_mode.value, r.to_mode.value
    if r.noop:
        return f"{dev} already in {dst}"
    if r.kind.value == "asic":
        delta = (r.power_after_w or 0.0) - (r.power_before_w or 0.0)
        return (f"{dev} (ASIC, facility {r.facility}): {src} → {dst}; facility draw "
                f"{_si(r.power_before_w or 0.0, 'W')} → {_si(r.power_after_w or 0.0, 'W')} "
                f"({delta:+,.0f} W); committed as generation {r.generation}")
    p = r.phases
    return (f"{dev}: {src} → {dst} in [bold]{r.total_ms:.3f} ms[/] (pause {p.pause_ms:.3f}, save "
            f"{p.save_state_ms:.3f}, activate {p.activate_ms:.3f}, health {p.health_check_ms:.3f}); "
            f"committed as generation {r.generation}")


def snapshot(fleet: Any) -> list[dict[str, Any]]:
    """Every facility's report as JSON rows. One facility (or GPU) that does not answer never
    ends the caller: it shows as unavailable and the next refresh asks again."""
    from actors.handles import get
    from hcp.errors import HcpError

    out = []
    for name, h in sorted(fleet.facilities.items()):
        try:
            out.append(get(h.report.remote(), f"facility {name}", 10.0).to_dict())
        except HcpError as exc:
            out.append(unavailable_facility(name, exc.detail))
    return out


def fleet_view(reports: list[dict[str, Any]]) -> Group:
    gpus = [g for r in reports for g in r["gpus"]]
    return Group(facility_table(reports), gpu_table(gpus))


def stored_table(states: list[Any]) -> Table:
    t = Table(title="Committed device state (from the store; the fleet is not running)")
    for col in ("device", "kind", "mode", "since", "gen", "hashes", "shares", "restarts"):
        t.add_column(col)
    for s in states:
        t.add_row(s.device_id, s.kind, s.mode.value, s.mode_since.isoformat(timespec="seconds"),
                  str(s.generation), f"{s.hashes_done:,}", str(s.shares_found), str(s.restarts))
    return t


# --- optimizer (issue 3) ---
_STATUS_STYLE = {"APPLIED": "green", "RECONCILED_APPLIED": "green", "NOOP": "white", "ISSUED": "yellow",
                 "FAILED": "red", "TIMEOUT": "red", "RECONCILED_NOT_APPLIED": "red"}


def decisions_table(rows: list[dict[str, Any]]) -> Table:
    """The optimizer's latest decisions (newest first) and what became of each."""
    t = Table(title="Optimizer decisions")
    for col in ("tick", "device", "change", "reason", "expected USD/h", "outcome", "ack ms", "realized USD"):
        t.add_column(col, justify="right" if col in ("expected USD/h", "ack ms", "realized USD") else "left")
    for r in rows:
        st = r["status"]
        profit = r.get("realized_profit_micro_usd")
        t.add_row(
            r["tick_at"][:19], r["device_id"],
            f"[{_MODE_STYLE.get(r['from_mode'], 'white')}]{r['from_mode']}[/] → "
            f"[{_MODE_STYLE.get(r['to_mode'], 'white')}]{r['to_mode']}[/]",
            r["reason"], f"{r['expected_gain_usd_per_hour']:+.4f}",
            f"[{_STATUS_STYLE.get(st, 'white')}]{st}[/]",
            f"{r['latency_ms']:.1f}" if r.get("latency_ms") is not None else "",
            f"{profit / 1e6:+.6f}" if profit is not None else "",
        )
    return t
