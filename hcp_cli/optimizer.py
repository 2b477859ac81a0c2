"""The optimizer in the CLI: started by ``hcp run``, its decisions shown live and by ``hcp decisions``."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import typer

from hcp.config import Settings
from hcp.errors import HcpError, ValidationError
from hcp.fleet.spec import FleetSpec

log = logging.getLogger(__name__)

FEEDS = ("simulator", "replay")


def start_optimizer(spec: FleetSpec, settings: Settings, handles: Any, feed: str) -> tuple[Any, Settings]:
    """Launch the optimizer actor over a running fleet with the named price feed."""
    from actors.optimizer import launch_optimizer

    if feed not in FEEDS:
        raise ValidationError(f"unknown feed {feed!r}; expected one of {', '.join(FEEDS)}", feed=feed)
    s = settings.with_(optimizer_feed=feed)
    return launch_optimizer(spec, s, handles.gpus, handles.facilities), s


def recent_decisions(handle: Any, limit: int = 8) -> list[dict[str, Any]]:
    """The latest decisions with outcomes; empty (not an error) while the optimizer restarts."""
    import ray

    from hcp.economics.optimizer import outcome_dict

    try:
        return [outcome_dict(r.decision, r.outcome)
                for r in ray.get(handle.recent.remote(limit), timeout=5)]
    except (ray.exceptions.RayError, HcpError) as exc:
        log.warning("optimizer not answering: %s", exc)
        return []


def log_decisions(rows: list[dict[str, Any]], seen: set[str]) -> None:
    """One log line per decision not logged before (the non-live view of ``hcp run``)."""
    for r in reversed(rows):
        key = f"{r['decision_id']}:{r['status']}"
        if key in seen:
            continue
        seen.add(key)
        lat = f" in {r['latency_ms']:.1f} ms" if r["latency_ms"] is not None else ""
        log.info("decision %s %s -> %s (%s, %+.4f USD/h expected): %s%s", r["device_id"], r["from_mode"],
                 r["to_mode"], r["reason"], r["expected_gain_usd_per_hour"], r["status"], lat)


def decisions_cmd(
    limit: int = typer.Option(20, help="How many of the latest decisions."),
    device: str | None = typer.Option(None, help="Only this device."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The optimizer's latest decisions and their outcomes, from the store."""
    from rich.console import Console

    from hcp.economics.optimizer import OptimizerRepository, outcome_dict
    from hcp.store import engine_for, migrate
    from hcp_cli.views import decisions_table

    # Piped output (scripts, tests) is not squeezed into 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 160)
    settings = Settings()
    try:
        engine = engine_for(settings.resolved_database_url)
        migrate(engine)
        rows = [outcome_dict(d, o) for d, o in OptimizerRepository(engine).decisions(limit, device)]
    except HcpError as exc:
        console.print(f"[red]error[/] {exc.code}: {exc.detail}")
        raise typer.Exit(code=2) from None
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        console.print(decisions_table(rows))


def with_decisions(view: Any, handle: Any) -> Any:
    """The live fleet view with the optimizer's latest decisions under it."""
    if handle is None:
        return view
    from rich.console import Group

    from hcp_cli.views import decisions_table

    return Group(view, decisions_table(recent_decisions(handle)))


def stop(handle: Any) -> None:
    if handle is not None:
        from actors.optimizer import stop_optimizer

        stop_optimizer(handle)
