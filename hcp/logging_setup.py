"""Logging configuration shared by the CLI, actors and tests."""

from __future__ import annotations

import logging

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_hcp", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._hcp = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
