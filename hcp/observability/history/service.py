"""Which history answers: Prometheus where it runs, the store's own rows where it does not.

``HCP_OPS__HISTORY_SOURCE``: ``auto`` (the default) reads Prometheus, and the store when
Prometheus does not answer (asking Prometheus again after 30 s);
``prometheus`` only Prometheus (a 503 ``history_unavailable`` while it is down); ``store``
only the store.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Literal, Protocol

from sqlalchemy import Engine

from hcp.clock import Clock, SystemClock
from hcp.config import Settings
from hcp.errors import HistoryUnavailableError, UnknownDeviceError, UnknownFacilityError
from hcp.observability.history.prometheus import PrometheusHistory
from hcp.observability.history.series import History, Scope, Window
from hcp.observability.history.sql import SqlHistory

log = logging.getLogger(__name__)

HistoryMode = Literal["auto", "prometheus", "store"]
RECHECK_S = 30.0


class HistoryReader(Protocol):
    def history(self, scope: Scope, subject: str, window: Window, now: datetime) -> History: ...


class HistoryService:
    def __init__(self, store: SqlHistory, prometheus: PrometheusHistory | None,
                 mode: HistoryMode, clock: Clock) -> None:
        if mode == "prometheus" and prometheus is None:
            raise ValueError("history mode 'prometheus' needs a Prometheus")
        self._store = store
        self._prometheus = prometheus if mode != "store" else None
        self._mode = mode
        self._clock = clock
        self._down_until = -1.0
        self._lock = threading.Lock()

    def _reader(self) -> HistoryReader:
        if self._prometheus is None:
            return self._store
        with self._lock:
            if self._mode == "auto" and self._clock.monotonic() < self._down_until:
                return self._store
        return self._prometheus

    def history(self, scope: Scope, subject: str, window: Window) -> History:
        """Blocking (SQL or HTTP): call it from a thread in async code."""
        if not self._store.exists(scope, subject):
            if scope is Scope.DEVICE:
                raise UnknownDeviceError(f"no GPU {subject!r} in the fleet", device_id=subject)
            raise UnknownFacilityError(f"no facility {subject!r} in the fleet", facility=subject)
        reader = self._reader()
        now = self._clock.now()
        try:
            return reader.history(scope, subject, window, now)
        except HistoryUnavailableError:
            if self._mode != "auto" or reader is self._store:
                raise
            with self._lock:
                self._down_until = self._clock.monotonic() + RECHECK_S
            log.info("Prometheus did not answer: the metrics history is read from the store")
            return self._store.history(scope, subject, window, now)


def build_history(settings: Settings, engine: Engine, clock: Clock | None = None) -> HistoryService:
    """The API's history: Prometheus at ``HCP_OPS__PROMETHEUS_HOST``/``_PORT`` (as ``hcp ops
    prometheus start`` runs it) and the store of this process's engine."""
    ops = settings.ops
    prometheus = None if ops.history_source == "store" else PrometheusHistory(ops.prometheus_url)
    return HistoryService(SqlHistory(engine), prometheus, ops.history_source, clock or SystemClock())
