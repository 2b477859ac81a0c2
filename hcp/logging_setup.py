"""Logging configuration shared by the CLI, actors and tests."""

from __future__ import annotations

import logging
import sys
from typing import Any

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time, not at creation: a handler bound to a
    stream that was later replaced and closed (a test runner's, a daemon's) would fail every record."""

    @property  # type: ignore[override]
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # type: ignore[no-untyped-def]
        pass


# Libraries that narrate routine work at INFO: a plain command prints nothing of theirs.
_QUIET = ("alembic", "ray", "filelock", "urllib3", "httpx", "httpcore")


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Plain lines on stderr; ``json``: one JSON object per line with the correlation id
    (``HCP_OPS__LOG_JSON``, for a log shipper)."""
    root = logging.getLogger()
    if not any(getattr(h, "_hcp", False) for h in root.handlers):
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._hcp = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    if json:
        from hcp.observability.logs import use_json_lines

        for handler in root.handlers:
            if getattr(handler, "_hcp", False):
                use_json_lines(handler)
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def configure_for(settings: Any) -> None:
    """Logging as a process of the platform is told to by its ``Settings``."""
    configure_logging(settings.log_level, json=settings.ops.log_json)
