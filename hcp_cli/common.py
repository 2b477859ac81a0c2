"""What every ``hcp`` command shares: the console, settings, quiet logging and typed failures."""

from __future__ import annotations

import os
import select
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from hcp.config import Settings, prepare_home
from hcp.errors import HcpError
from hcp.logging_setup import configure_for


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader of stdout is gone (``| tee`` and Ctrl-C): go quiet, carry on.

        Rich's own answer is ``SystemExit(1)`` from inside ``print``, which would cut a
        shutdown short at its first line; what this command still has to do matters more
        than output nobody reads.
        """
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # later writes (interpreter exit included) go nowhere
        os.close(devnull)


# Piped output (logs, tests, scripts) must not be re-wrapped at 80 columns.
console = _Console(soft_wrap=not sys.stdout.isatty(), width=None if sys.stdout.isatty() else 160)


def load_settings(spec: Path | None = None) -> Settings:
    s = Settings()
    if spec is not None:
        s = s.with_(fleet_spec=spec)
    configure_for(s)
    prepare_home(s)
    return s


def fail(exc: HcpError) -> None:
    # str(exc) carries the full message (a spec error lists every bad field on its own line).
    say(f"[red]error[/] {exc.code}: {escape(str(exc))}")
    raise typer.Exit(code=2)


def mute_dead_outputs() -> None:
    """Point stdout and stderr at /dev/null where their reader is gone.

    After ``| tee`` and Ctrl-C, whatever still writes there (Ray's shutdown prints its
    workers' last log lines to stderr) would raise ``BrokenPipeError`` in the middle of
    the shutdown. A pipe whose read end is closed polls as POLLERR.
    """
    poller = select.poll()
    for fd in (1, 2):
        poller.register(fd, select.POLLOUT)
    for fd, events in poller.poll(0):
        if events & select.POLLERR:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)


def say(message: str) -> None:
    """Print, and never fail: stdout may be a pipe whose reader is gone (``| tee`` and Ctrl-C)."""
    try:
        console.print(message, highlight=False)
    except (OSError, ValueError):
        pass
