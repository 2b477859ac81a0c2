"""``hcp`` commands: run the platform, inspect it, switch a device."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from hcp.config import Settings, prepare_home
from hcp.errors import HcpError
from hcp.fleet.modes import GpuMode
from hcp.fleet.spec import load_fleet_spec
from hcp.logging_setup import configure_logging
from hcp_cli.views import switch_line

app = typer.Typer(help="hcp: a GPU fleet that switches between mining and AI inference in milliseconds.",
                  no_args_is_help=True, add_completion=False)
# Piped output (logs, tests, scripts) must not be re-wrapped at 80 columns.
console = Console(soft_wrap=not sys.stdout.isatty(), width=None if sys.stdout.isatty() else 160)
log = logging.getLogger(__name__)


def _settings(spec: Path | None = None) -> Settings:
    s = Settings()
    if spec is not None:
        s = s.model_copy(update={"fleet_spec": spec})
    configure_logging(s.log_level)
    prepare_home(s)
    return s


def _fail(exc: HcpError) -> None:
    # str(exc) carries the full message (a spec error lists every bad field on its own line).
    console.print(f"[red]error[/] {exc.code}: {escape(str(exc))}", highlight=False)
    raise typer.Exit(code=2)


@app.command()
def run(
    spec: Path | None = typer.Option(None, help="Fleet spec YAML (default: HCP_FLEET_SPEC or the local fleet)."),
    mode: str = typer.Option("MINING", help="Mode every GPU enters at start; KEEP resumes the committed modes."),
    duration: float = typer.Option(0.0, help="Stop after this many seconds (0: run until Ctrl-C)."),
    live: bool = typer.Option(True, help="Show a live fleet table (off: log one line per refresh)."),
    refresh: float = typer.Option(1.0, help="Seconds between refreshes."),
    api: bool = typer.Option(True, "--api/--no-api", help="Deploy the HTTP API (router + Ray Serve)."),
    optimizer: bool = typer.Option(True, "--optimizer/--no-optimizer",
                                   help="Run the economic optimizer: it decides and switches devices live."),
    feed: str = typer.Option("simulator", help="Optimizer price feed: simulator, or replay (the real "
                             "2022H1 series, one hour per optimizer step)."),
) -> None:
    """Start a local Ray cluster (or join HCP_RAY_ADDRESS), build the fleet, start mining, show it."""
    import ray

    from actors.fleet import launch_fleet, prepare_store, shutdown_fleet
    from actors.handles import get
    from hcp_cli.runtime import start_or_join
    from hcp_cli.views import fleet_view, unavailable_facility

    settings = _settings(spec)
    try:
        fleet_spec = load_fleet_spec(settings.fleet_spec)
        target = None if mode.upper() == "KEEP" else GpuMode.parse(mode)
        prepare_store(fleet_spec, settings)
    except HcpError as exc:
        _fail(exc)
    console.print(f"[bold]hcp[/] fleet [cyan]{fleet_spec.name}[/]: {len(fleet_spec.facilities)} facilities, "
                  f"{len(fleet_spec.gpus())} GPUs, {len(fleet_spec.asics())} ASICs; "
                  f"store {settings.resolved_database_url.split('@')[-1]}")
    start_or_join(settings, log_to_driver=not live, record=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    handles = None
    opt = None  # optimizer actor (issue 3)
    try:
        with console.status("starting GPU actors (loading and warming both contexts)..."):
            handles = launch_fleet(fleet_spec, settings)
        if target is not None:
            for gid in handles.gpus:
                r = handles.switch(gid, target, "platform start")
                console.print(f"{gid}: {r.from_mode.value} → {r.to_mode.value} in {r.total_ms:.2f} ms")
        # --- HTTP API (issue 4): router actor + Serve app ---
        if api:
            from hcp_cli.api import start_api

            with console.status("starting the router and the HTTP API (Ray Serve)..."):
                url, api_router = start_api(handles, settings)  # the handle keeps the router alive
            console.print(f"[green]API[/] {url}/docs — tokens: `hcp token --role customer --subject ME`")
        # --- end HTTP API ---
        # --- optimizer (issue 3) ---
        if optimizer:
            from hcp_cli import optimizer as opt_cli

            with console.status("starting the optimizer..."):
                opt, _ = opt_cli.start_optimizer(fleet_spec, settings, handles, feed)
            console.print(f"[green]optimizer[/] every {settings.optimizer_interval_seconds:g} s on the {feed} "
                          "feed — decisions below and in `hcp decisions`")
        # --- end optimizer ---
        console.print("[green]fleet running[/] — `hcp status`, `hcp switch GPU MODE`; Ctrl-C stops.")
        t_end = time.monotonic() + duration if duration > 0 else float("inf")

        def snapshot() -> list[dict]:
            # One facility (or GPU) that does not answer must never end the platform: the
            # table shows it as unavailable and the loop goes on (a restarted actor returns).
            out = []
            for name, h in sorted(handles.facilities.items()):
                try:
                    out.append(get(h.report.remote(), f"facility {name}", 10.0).to_dict())
                except HcpError as exc:
                    log.warning("facility %s: %s", name, exc.detail)
                    out.append(unavailable_facility(name, exc.detail))
            return out

        if live and console.is_terminal:
            from rich.live import Live

            from hcp_cli.optimizer import with_decisions  # issue 3: decisions under the fleet

            with Live(with_decisions(fleet_view(snapshot()), opt), console=console, refresh_per_second=4) as view:
                while time.monotonic() < t_end and not stop["now"]:
                    time.sleep(refresh)
                    view.update(with_decisions(fleet_view(snapshot()), opt))
        else:
            seen: set[str] = set()
            while time.monotonic() < t_end and not stop["now"]:
                time.sleep(refresh)
                for r in snapshot():
                    modes = ", ".join(f"{g['device_id']}={g['mode']}@{g['hashrate_hs']:.0f}H/s"
                                      + ("" if g["availability"] == "up" else " (unavailable)")
                                      for g in r["gpus"])
                    log.info("%s power %.0f W of %.0f W cap; %s", r["facility"], r["facility_power_w"],
                             r["capacity_w"], modes)
                if opt is not None:  # issue 3: one line per new decision
                    from hcp_cli.optimizer import log_decisions, recent_decisions

                    log_decisions(recent_decisions(opt, 20), seen)
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping: final checkpoint and shutdown...")
        if opt is not None:  # issue 3: no decision goes out while the fleet stops
            from hcp_cli.optimizer import stop as stop_opt

            stop_opt(opt)
        if handles is not None:
            shutdown_fleet(handles)
        ray.shutdown()
        from hcp_cli.runtime import forget_address

        forget_address(settings)
        console.print("stopped.")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")) -> None:
    """Show the running fleet (or, if none runs, the committed state in the store)."""
    settings = _settings()
    try:
        from actors.fleet import find_fleet
        from hcp_cli.runtime import join

        join(settings)
        handles = find_fleet(settings)
        reports = [r.to_dict() for r in handles.facility_reports()]
    except HcpError as exc:
        # stderr: `--json` output on stdout stays parseable.
        Console(stderr=True).print(f"[yellow]{exc.code}[/]: {escape(exc.detail)}")
        _stored_status(settings, as_json)
        return
    if as_json:
        print(json.dumps(reports, default=str, indent=2))
        return
    from hcp_cli.views import fleet_view

    console.print(fleet_view(reports))


def _stored_status(settings: Settings, as_json: bool) -> None:
    from hcp.store import FleetRepository, connect
    from hcp_cli.views import stored_table

    try:
        states = FleetRepository(connect(settings.resolved_database_url)).device_states()
    except HcpError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps([{**s.__dict__, "mode": s.mode.value} for s in states], default=str, indent=2))
    else:
        console.print(stored_table(states))


@app.command()
def switch(device: str = typer.Argument(..., help="GPU id (or ASIC id) from the fleet spec."),
           mode: str = typer.Argument(..., help="MINING, INFERENCE, IDLE or CURTAILED."),
           reason: str = typer.Option("operator", help="Why; recorded in the event log.")) -> None:
    """Switch one device of the running fleet and print the phase breakdown."""
    settings = _settings()
    try:
        from actors.fleet import find_fleet
        from hcp_cli.runtime import join

        target = GpuMode.parse(mode)
        join(settings)
        r = find_fleet(settings).switch(device, target, reason)
    except HcpError as exc:
        _fail(exc)
    console.print(switch_line(r))


@app.command()
def events(device: str | None = typer.Option(None), limit: int = typer.Option(20),
           as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """The latest events from the append-only log."""
    from rich.table import Table

    from hcp.store import FleetRepository, connect

    settings = _settings()
    try:
        rows = FleetRepository(connect(settings.resolved_database_url)).events(device_id=device, limit=limit)
    except HcpError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps([e.__dict__ for e in rows], default=str, indent=2))
        return
    t = Table(title="events")
    for col in ("id", "at", "kind", "device", "change", "total ms", "reason"):
        t.add_column(col)
    for e in rows:
        change = f"{e.from_mode} → {e.to_mode}" if e.to_mode else ""
        t.add_row(str(e.id), e.at.isoformat(timespec="seconds"), e.kind, e.device_id or "", change,
                  f"{e.total_ms:.3f}" if e.total_ms is not None else "", e.reason or "")
    console.print(t)


@app.command("validate-spec")
def validate_spec(path: Path) -> None:
    """Check a fleet spec file; prints every bad field."""
    _settings()
    try:
        spec = load_fleet_spec(path)
    except HcpError as exc:
        _fail(exc)
    console.print(f"[green]ok[/] {spec.name}: {len(spec.facilities)} facilities, {len(spec.gpus())} GPUs, "
                  f"{len(spec.asics())} ASICs")


@app.command()
def migrate() -> None:
    """Bring the store's schema up to date."""
    from hcp.store import connect
    from hcp.store import migrate as do_migrate

    settings = _settings()
    try:
        do_migrate(connect(settings.resolved_database_url))
    except HcpError as exc:
        _fail(exc)
    console.print("schema up to date")


# Each area's commands live in its own module; they are registered here, after `app` exists.
from hcp_cli.api import token_cmd
from hcp_cli.backtest import backtest_cmd
from hcp_cli.miner import miner_app
from hcp_cli.ops import ops_app
from hcp_cli.optimizer import decisions_cmd

app.add_typer(miner_app, name="miner")
app.add_typer(__import__("hcp_cli.images", fromlist=["images_app"]).images_app, name="images")
app.add_typer(ops_app, name="ops")
app.add_typer(__import__("hcp_cli.agent", fromlist=["agent_app"]).agent_app, name="agent")
app.command("backtest")(backtest_cmd)
app.command("token")(token_cmd)
app.command("decisions")(decisions_cmd)


def main() -> None:
    try:
        app()
    except HcpError as exc:  # last resort: typed errors never print a traceback
        console.print(f"[red]error[/] {exc.code}: {escape(str(exc))}")
        sys.exit(2)


if __name__ == "__main__":
    main()
