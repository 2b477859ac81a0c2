"""What every ``hcp`` command shares: the console, settings, quiet logging and typed failures."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from hcp.config import Settings, prepare_home
from hcp.errors import HcpError
from hcp.logging_setup import configure_logging

# Piped output (logs, tests, scripts) must not be re-wrapped at 80 columns.
console = Console(soft_wrap=not sys.stdout.isatty(), width=None if sys.stdout.isatty() else 160)


def load_settings(spec: Path | None = None) -> Settings:
    s = Settings()
    if spec is not None:
        s = s.with_(fleet_spec=spec)
    configure_logging(s.log_level)
    prepare_home(s)
    return s


def fail(exc: HcpError) -> None:
    # str(exc) carries the full message (a spec error lists every bad field on its own line).
    say(f"[red]error[/] {exc.code}: {escape(str(exc))}")
    raise typer.Exit(code=2)


def say(message: str) -> None:
    """Print, and never fail: stdout may be a pipe whose reader is gone (``| tee`` and Ctrl-C)."""
    try:
        console.print(message, highlight=False)
    except (OSError, ValueError):
        pass
