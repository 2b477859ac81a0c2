"""``hcp`` commands: run the platform, inspect it, switch a device."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from hcp.config import Settings
from hcp.errors import HcpError
from hcp.fleet.modes import GpuMode
from hcp.fleet.spec import load_fleet_spec
from hcp_cli.common import console, fail, load_settings
from hcp_cli.views import switch_line

app = typer.Typer(help="hcp: a GPU fleet that switches between mining and AI inference in milliseconds.",
                  no_args_is_help=True, add_completion=False)
log = logging.getLogger(__name__)


_settings = load_settings
_fail = fail


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")) -> None:
    """Show the running fleet (or, if none runs, the committed state in the store)."""
    settings = _settings()
    try:
        from actors import topology

        topology.join_cluster(settings)
        reports = [r.to_dict() for r in topology.require_fleet(settings).facility_reports()]
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
    from sqlalchemy import inspect

    from hcp.fleet.repository import FleetRepository
    from hcp.store import engine_for
    from hcp_cli.views import stored_table

    engine = engine_for(settings.resolved_database_url)
    try:
        # A home that never ran a platform has no store yet: nothing committed to show.
        fresh = not inspect(engine).has_table("device_state")
        states = [] if fresh else FleetRepository(engine).device_states()
    except HcpError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 -- the store cannot be read: say so, typed
        from hcp.errors import StoreError

        _fail(StoreError(f"cannot read the store: {type(exc).__name__}"))
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
        from actors import topology

        target = GpuMode.parse(mode)
        topology.join_cluster(settings)
        r = topology.require_fleet(settings).switch(device, target, reason)
    except HcpError as exc:
        _fail(exc)
    console.print(switch_line(r))


@app.command()
def events(device: str | None = typer.Option(None), limit: int = typer.Option(20),
           as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """The latest events from the append-only log."""
    from rich.table import Table

    from hcp.fleet.repository import FleetRepository
    from hcp.store import engine_for

    settings = _settings()
    try:
        rows = FleetRepository(engine_for(settings.resolved_database_url)).events(device_id=device, limit=limit)
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
    from hcp.store import engine_for
    from hcp.store import migrate as do_migrate

    settings = _settings()
    try:
        do_migrate(engine_for(settings.resolved_database_url))
    except HcpError as exc:
        _fail(exc)
    console.print("schema up to date")


# Each area's commands live in its own module; they are registered here, after `app` exists.
from hcp_cli.api import token_cmd  # noqa: E402
from hcp_cli.backtest import backtest_cmd  # noqa: E402
from hcp_cli.miner import miner_app  # noqa: E402
from hcp_cli.ops import ops_app  # noqa: E402
from hcp_cli.optimizer import decisions_cmd  # noqa: E402
from hcp_cli.run import run  # noqa: E402

app.add_typer(miner_app, name="miner")
app.add_typer(__import__("hcp_cli.images", fromlist=["images_app"]).images_app, name="images")
app.add_typer(ops_app, name="ops")
app.add_typer(__import__("hcp_cli.agent", fromlist=["agent_app"]).agent_app, name="agent")
app.add_typer(__import__("hcp_cli.batch", fromlist=["batch_app"]).batch_app, name="batch")
app.add_typer(__import__("hcp_cli.batch", fromlist=["cluster_app"]).cluster_app, name="cluster")
app.command("run")(run)
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
