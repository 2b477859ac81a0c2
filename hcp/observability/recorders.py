"""Recorders that read a metric from where it lives (the books, a log, a store) rather than
where it happens, run together on one thread of the actor that owns the source."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)


def _run(recorders: Sequence[Callable[[], None]], every_s: float, stop: threading.Event) -> None:
    """Each recorder every ``every_s`` seconds until ``stop``; a failed reading is logged and
    the next one tried (an actor must never stop for its metrics)."""
    while not stop.is_set():
        for record in recorders:
            try:
                record()
            except Exception:
                log.warning("%s failed", getattr(record, "__qualname__", record), exc_info=True)
        stop.wait(every_s)


def start_recorders(recorders: Sequence[Callable[[], None]], every_s: float) -> threading.Event:
    """Run ``recorders`` on one daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(target=_run, args=(recorders, every_s, stop), name="metrics-recorders",
                     daemon=True).start()
    return stop
