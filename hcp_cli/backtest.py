"""``hcp backtest``: replay the real price history through the policies and compare them."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hcp.config import DEFAULT_FLEET_SPEC
from hcp.economics.market.epochs import DifficultyBeyond
from hcp.errors import HcpError, ValidationError

log = logging.getLogger(__name__)
console = Console(soft_wrap=not sys.stdout.isatty(), width=None if sys.stdout.isatty() else 160)


def _floats(text: str, name: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValidationError(f"{name} must be comma-separated numbers, got {text!r}") from None
    if not values:
        raise ValidationError(f"{name} needs at least one value")
    return values


def _hashrates(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        model, sep, value = item.partition("=")
        try:
            out[model.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not model.strip():
            raise ValidationError(f"--gpu-hashrate takes MODEL=H/s, got {item!r}")
    return out


def backtest_cmd(
    btc_daily: Annotated[Path | None, typer.Option(
        "--btc-daily", help="BTC daily CSV (default: packaged 2021-2022H1).")] = None,
    difficulty: Annotated[Path | None, typer.Option(
        "--difficulty", help="Difficulty epochs CSV (default: packaged).")] = None,
    power: Annotated[Path | None, typer.Option(
        "--power", help="Hourly day-ahead power CSV, EUR/MWh (default: packaged BE 2022H1).")] = None,
    gpu_prices: Annotated[Path | None, typer.Option(
        "--gpu-prices", help="GPU rental offers CSV (default: packaged 2024 snapshots).")] = None,
    fleet: Annotated[Path, typer.Option(
        "--fleet", help="Fleet spec YAML (default: the local fleet).")] = DEFAULT_FLEET_SPEC,
    eur_usd: Annotated[float, typer.Option(
        "--eur-usd", help="EUR->USD rate for power prices (default: 2022H1 ECB mean).")] = 1.0934,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object instead of a table.")] = False,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="Write a PNG of modes over time vs prices.")] = None,
    threshold_pct: Annotated[float, typer.Option(
        "--threshold-pct", help="hcp policy: minimum advantage, %.")] = 5.0,
    dwell_hours: Annotated[float, typer.Option(
        "--dwell-hours", help="hcp policy: the advantage must hold this long.")] = 1.0,
    utilization: Annotated[float, typer.Option(
        "--utilization", help="Share of each hour an inference GPU is sold.")] = 0.6,
    rental_occupancy: Annotated[float, typer.Option(
        "--rental-occupancy", help="Share of each hour a GPU offered for rent is rented "
                                   "(always_rent, hcp_rent).")] = 0.6,
    gpu_switch_seconds: Annotated[float, typer.Option(
        "--gpu-switch-seconds", help="Time a GPU switch earns nothing.")] = 60.0,
    asic_switch_seconds: Annotated[float, typer.Option(
        "--asic-switch-seconds", help="ASIC restart/ramp time.")] = 600.0,
    gpu_hashrate: Annotated[list[str] | None, typer.Option(
        "--gpu-hashrate", help="Measured SHA-256d rate, MODEL=H/s (repeatable).")] = None,
    sweep: Annotated[bool, typer.Option(
        "--sweep", help="Also sweep the hcp policy over threshold x dwell.")] = False,
    sweep_thresholds: Annotated[str, typer.Option(
        help="Sweep thresholds, % (comma-separated).")] = "0,2,5,10,20",
    sweep_dwell_hours: Annotated[str, typer.Option(
        help="Sweep dwell times, hours (comma-separated).")] = "0,1,2,4",
    strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse any gap in the input (missing hours or days, trimmed window, "
                         "filled fees, difficulty held past its file) instead of warning.")] = False,
    difficulty_beyond: Annotated[DifficultyBeyond, typer.Option(
        "--difficulty-beyond", case_sensitive=False,
        help="Hours after the difficulty file's last epoch: hold its value (default, flagged) or "
             "project it from the BTC series' hash rate by the retarget rule.")] = DifficultyBeyond.HOLD,
    ray_tasks: Annotated[bool, typer.Option(
        "--ray/--no-ray",
        help="Run the sweep as Ray tasks (joins RAY_ADDRESS / HCP_RAY_ADDRESS, else a local Ray).")] = True,
) -> None:
    """Backtest always_mine, always_inference, always_rent, greedy, hcp, hcp_rent and the
    perfect-foresight optimum."""
    from hcp.economics.backtest.engine import run_backtest
    from hcp.economics.backtest.report import assumptions_text, table_rows
    from hcp.economics.devices import EconomicsParams, from_fleet_spec
    from hcp.economics.market.replay import MarketHistory
    from hcp.economics.policy.params import PolicyParams
    from hcp.fleet.spec import load_fleet_spec

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("hcp.economics.market.quality").setLevel(logging.ERROR)  # printed with the result instead
    try:
        economics = EconomicsParams(gpu_utilization=utilization, gpu_rental_occupancy=rental_occupancy,
                                    gpu_switch_seconds=gpu_switch_seconds,
                                    asic_switch_seconds=asic_switch_seconds,
                                    gpu_hashrate_overrides=_hashrates(gpu_hashrate or []))
        params = PolicyParams(threshold_pct=threshold_pct, dwell_s=dwell_hours * 3600.0,
                              economics=economics)
        history = MarketHistory.load(btc_daily, difficulty, power, gpu_prices, eur_usd,
                                     difficulty_beyond=difficulty_beyond, strict=strict)
        spec = load_fleet_spec(fleet)
        result = run_backtest(history, spec, params)
        out: dict[str, Any] = result.summary()
        out["assumptions"]["files"] = {k: str(v) if v else "packaged" for k, v in (
            ("btc_daily", btc_daily), ("difficulty", difficulty), ("power", power),
            ("gpu_prices", gpu_prices), ("fleet", fleet))}
        out["assumptions"]["strict"] = strict
        if sweep:
            devices, facilities = from_fleet_spec(spec, economics)
            out["sweep"] = _sweep(history, devices, facilities, params,
                                  _floats(sweep_thresholds, "--sweep-thresholds"),
                                  _floats(sweep_dwell_hours, "--sweep-dwell-hours"),
                                  result.outcomes["perfect_foresight"].profit_usd, ray_tasks)
        if plot is not None:
            from hcp.economics.backtest.plot import plot_backtest

            plot_backtest(result, plot)
    except HcpError as exc:
        console.print(f"[red]error[/] {exc.code}: {escape(str(exc))}", highlight=False)
        raise typer.Exit(code=2) from None
    if as_json:
        print(json.dumps(out, default=str))
        return
    table = Table(title=f"Backtest {result.times[0]:%Y-%m-%d} .. {result.times[-1]:%Y-%m-%d} "
                        f"({len(result.times)} hours, fleet {spec.name})")
    for col, justify in (("policy", "left"), ("profit USD", "right"), ("switches", "right"),
                         ("% of optimum", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in table_rows(result):
        table.add_row(*row)
    console.print(table)
    if sweep:
        st = Table(title="hcp policy sweep (threshold x dwell)")
        for col in ("threshold %", "dwell h", "profit USD", "switches", "% of optimum"):
            st.add_column(col, justify="right")
        for r in out["sweep"]:
            st.add_row(f"{r['threshold_pct']:g}", f"{r['dwell_hours']:g}", f"{r['profit_usd']:,.2f}",
                       str(r["switches"]), f"{r['pct_of_optimum']:.2f}")
        console.print(st)
    console.print("Assumptions:")
    console.print(escape(assumptions_text(out["assumptions"])), highlight=False)
    _print_warnings(result.warnings)
    if plot is not None:
        console.print(f"plot written to {plot}")


def _print_warnings(warnings: Any) -> None:
    """Every trim or fill of the input, after the figures they qualify."""
    if not warnings:
        console.print("Input: no gaps, trims or fills.")
        return
    console.print(f"[yellow]Input warnings[/] ({len(warnings)}; --strict refuses all but estimates "
                  "and projections):", highlight=False)
    for w in warnings:
        console.print(f"  [yellow]{w.action.value}[/] {escape(str(w))}", highlight=False)


def _sweep(history: Any, devices: Any, facilities: Any, params: Any, thresholds: list[float],
           dwells: list[float], optimum: float, use_ray: bool) -> list[dict[str, Any]]:
    from hcp.economics.backtest.sweep import grid, run_local

    points = grid(thresholds, dwells)
    if not use_ray:
        return run_local(history, devices, facilities, params, points, optimum)
    from actors.batch import batch_cluster
    from actors.sweep import ray_mapper
    from hcp.config import Settings

    with batch_cluster(Settings()):
        return run_local(history, devices, facilities, params, points, optimum, mapper=ray_mapper)
