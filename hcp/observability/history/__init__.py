"""Per-GPU and per-facility metrics history for the last hour, day and 30 days: read from
Prometheus where it runs, from the store's own downsampled rows where it does not
(docs/operations.md, "Metrics history")."""

from hcp.observability.history.prometheus import PrometheusHistory
from hcp.observability.history.recorder import HistoryRecorder, MinuteRow
from hcp.observability.history.series import (
    History,
    HistoryPoint,
    HistorySource,
    Scope,
    Window,
)
from hcp.observability.history.service import HistoryService, build_history
from hcp.observability.history.sql import SqlHistory

__all__ = ["History", "HistoryPoint", "HistoryRecorder", "HistoryService", "HistorySource",
           "MinuteRow", "PrometheusHistory", "Scope", "SqlHistory", "Window", "build_history"]
