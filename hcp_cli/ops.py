"""``hcp ops prometheus start|stop|status``: the real Prometheus (and Alertmanager) beside a
running platform, bound to 127.0.0.1 by default, data under HCP_HOME/ops."""

from __future__ import annotations

import json

import typer

from hcp.config import Settings
from hcp.errors import HcpError

ops_app = typer.Typer(help="Operations: the Prometheus metrics history, alerting.",
                      no_args_is_help=True)
prometheus_app = typer.Typer(help="Prometheus (180-day metrics history) and Alertmanager.",
                             no_args_is_help=True)
ops_app.add_typer(prometheus_app, name="prometheus")


@prometheus_app.command("start")
def start(
    alertmanager: bool = typer.Option(True, help="Also start Alertmanager and route alerts to it."),
) -> None:
    """Start Prometheus scraping the platform through Ray's service discovery file.

    Ports, addresses, retention and intervals come from HCP_OPS__* (docs/operations.md)."""
    from hcp.observability import stack

    s = Settings()
    try:
        if alertmanager:
            am = stack.alertmanager(s)
            typer.echo(f"alertmanager: pid {am.start()}, {am.ready_url.removesuffix('/-/ready')}")
        prom = stack.prometheus(s, with_alertmanager=alertmanager)
        typer.echo(f"prometheus: pid {prom.start()}, {prom.ready_url.removesuffix('/-/ready')}, "
                   f"retention {s.ops.retention}, data {prom.workdir / 'data'}")
    except HcpError as exc:
        typer.echo(f"{exc.code}: {exc.detail}", err=True)
        tail = exc.context.get("tail")
        if tail:
            typer.echo(tail, err=True)
        raise typer.Exit(1) from None


@prometheus_app.command("stop")
def stop() -> None:
    """Stop Prometheus and Alertmanager (their data stays under HCP_HOME/ops)."""
    s = Settings()
    for daemon in _daemons(s):
        typer.echo(f"{daemon.name}: {'stopped' if daemon.stop() else 'not running'}")


@prometheus_app.command("status")
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Whether Prometheus and Alertmanager run and answer."""
    s = Settings()
    rows = [{"name": d.name, "pid": d.pid(), "ready": d.ready(),
             "url": d.ready_url.removesuffix("/-/ready")} for d in _daemons(s)]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        state = "ready" if r["ready"] else ("starting" if r["pid"] else "not running")
        typer.echo(f"{r['name']}: {state}" + (f" (pid {r['pid']}, {r['url']})" if r["pid"] else ""))


def _daemons(s: Settings) -> list:  # type: ignore[type-arg]
    from hcp.observability import stack

    daemons = []
    for make in (lambda: stack.prometheus(s), lambda: stack.alertmanager(s)):
        try:
            daemons.append(make())
        except HcpError:  # not installed: it cannot be running either
            continue
    return daemons
