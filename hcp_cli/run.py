"""``hcp run``: launch the platform through the topology, show it live, stop it completely.

Shutdown runs on Ctrl-C (SIGINT), SIGTERM or the end of ``--duration``, whatever stdout is:
with ``make run | tee log`` a Ctrl-C also kills ``tee``, and a print into that dead pipe must
not skip the steps after it, so every line the shutdown prints goes through ``say``.
"""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path
from typing import Any, Optional

import typer

from hcp.errors import HcpError
from hcp.fleet.modes import GpuMode
from hcp.fleet.spec import load_fleet_spec
from hcp_cli.common import console, fail, load_settings, mute_dead_outputs, say

log = logging.getLogger(__name__)


def run(
    spec: Optional[Path] = typer.Option(None, help="Fleet spec YAML (default: HCP_FLEET_SPEC or the local fleet)."),
    mode: str = typer.Option("MINING", help="Mode every GPU enters at start; KEEP resumes the committed modes."),
    duration: float = typer.Option(0.0, help="Stop after this many seconds (0: run until Ctrl-C)."),
    live: bool = typer.Option(True, help="Show a live fleet table (off: log one line per refresh)."),
    refresh: float = typer.Option(1.0, help="Seconds between refreshes."),
    api: bool = typer.Option(True, "--api/--no-api", help="Deploy the HTTP API (router + Ray Serve)."),
    optimizer: bool = typer.Option(True, "--optimizer/--no-optimizer",
                                   help="Run the economic optimizer: it decides and switches devices live."),
    feed: str = typer.Option("simulator", help="Optimizer price feed: simulator, or replay (the real "
                             "2022H1 series, one hour per optimizer step)."),
    oracle: bool = typer.Option(True, "--oracle/--no-oracle",
                                help="Run the oracle's validators (also HCP_ORACLE__ENABLED)."),
) -> None:
    """Start a local Ray cluster (or join HCP_RAY_ADDRESS), launch the platform, show it."""
    import ray

    from actors import topology
    from hcp_cli.optimizer import FEEDS

    settings = load_settings(spec)
    try:
        fleet_spec = load_fleet_spec(settings.fleet_spec)
        target = None if mode.upper() == "KEEP" else GpuMode.parse(mode)
        if feed not in FEEDS:
            from hcp.errors import ValidationError

            raise ValidationError(f"unknown feed {feed!r}; expected one of {', '.join(FEEDS)}")
    except HcpError as exc:
        fail(exc)
    console.print(f"[bold]hcp[/] fleet [cyan]{fleet_spec.name}[/]: {len(fleet_spec.facilities)} facilities, "
                  f"{len(fleet_spec.gpus())} GPUs, {len(fleet_spec.asics())} ASICs; "
                  f"store {settings.resolved_database_url.split('@')[-1]}")
    stop = {"now": False}

    def _stop(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    platform = None
    try:
        topology.start_cluster(settings, log_to_driver=not live)
        # Ray's core worker installs a failure handler for SIGTERM that aborts the process at
        # shutdown (exit 134, no final checkpoint message): ours goes back on top of it.
        signal.signal(signal.SIGTERM, _stop)
        with console.status("launching: store, GPU actors (both contexts warmed), escrow, "
                            "notary, oracle, router, optimizer, API..."):
            platform = topology.launch(settings, fleet_spec, start_mode=target, api=api,
                                       optimizer=optimizer, feed=feed, oracle=oracle)
        if platform.api_url:
            console.print(f"[green]API[/] {platform.api_url}/docs — tokens: "
                          "`hcp token --role customer --subject ME`")
        if platform.optimizer is not None:
            console.print(f"[green]optimizer[/] every {settings.optimizer.interval_seconds:g} s on the "
                          f"{feed} feed — decisions below and in `hcp decisions`")
        console.print("[green]fleet running[/] — `hcp status`, `hcp switch GPU MODE`; Ctrl-C stops.")
        _show(platform, live, refresh, duration, stop)
    except KeyboardInterrupt:
        pass
    except HcpError as exc:
        say(f"[red]error[/] {exc.code}: {exc.detail}")
    finally:
        mute_dead_outputs()
        say("stopping: final checkpoint and shutdown...")
        if platform is not None:
            topology.shutdown(platform)
        if ray.is_initialized():
            ray.shutdown()
        topology.ClusterRecord.forget(settings)
        say("stopped.")


def _show(platform: Any, live: bool, refresh: float, duration: float, stop: dict[str, bool]) -> None:
    from hcp_cli.optimizer import log_decisions, recent_decisions, with_decisions
    from hcp_cli.views import fleet_view, snapshot

    t_end = time.monotonic() + duration if duration > 0 else float("inf")
    targets = _Targets(platform.settings)
    opt = platform.optimizer
    if live and console.is_terminal:
        from rich.live import Live

        with Live(with_decisions(fleet_view(snapshot(platform.fleet)), opt), console=console,
                  refresh_per_second=4) as view:
            while time.monotonic() < t_end and not stop["now"]:
                time.sleep(refresh)
                targets.publish()
                view.update(with_decisions(fleet_view(snapshot(platform.fleet)), opt))
        return
    seen: set[str] = set()
    while time.monotonic() < t_end and not stop["now"]:
        time.sleep(refresh)
        targets.publish()
        for r in snapshot(platform.fleet):
            modes = ", ".join(f"{g['device_id']}={g['mode']}@{g['hashrate_hs']:.0f}H/s"
                              + ("" if g["availability"] == "up" else " (unavailable)")
                              for g in r["gpus"])
            log.info("%s power %.0f W of %.0f W cap; %s", r["facility"], r["facility_power_w"],
                     r["capacity_w"], modes)
        if opt is not None:
            log_decisions(recent_decisions(opt, 20), seen)


class _Targets:
    """Republish the Prometheus target list now and then, not on every refresh: it asks the
    GCS for every node (``ray.nodes()``), and nodes join or leave far less often."""

    EVERY_S = 15.0

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self._next = time.monotonic() + self.EVERY_S  # the launch has just published it

    def publish(self) -> None:
        from actors import topology

        if time.monotonic() >= self._next:
            self._next = time.monotonic() + self.EVERY_S
            topology.publish_metrics_targets(self._settings)
