"""The metrics history read from Prometheus: range queries over the recording rules' one-minute
series (``ops/prometheus/rules/recording.yml``), aggregated to the window's step.

Each value is one PromQL range query; a device's is the facility's expression over one
device's series, so both scopes come out of the same two stages as the store's reading: each
device's step first (``*_over_time``), then the devices of a step together.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

import httpx

from hcp.errors import HistoryUnavailableError
from hcp.observability.history.series import (
    History,
    HistoryPoint,
    HistorySource,
    Scope,
    Span,
    Window,
)

log = logging.getLogger(__name__)

# value: (across devices, over time, recorded series)
_QUERIES = {
    "devices": ("count", "avg_over_time", "device:hcp_device_power_watts:avg_1m"),
    "power_w": ("sum", "avg_over_time", "device:hcp_device_power_watts:avg_1m"),
    "power_w_max": ("sum", "max_over_time", "device:hcp_device_power_watts:max_1m"),
    "temperature_c": ("avg", "avg_over_time", "device:hcp_device_temperature_celsius:avg_1m"),
    "temperature_c_max": ("max", "max_over_time", "device:hcp_device_temperature_celsius:max_1m"),
    "utilization": ("avg", "avg_over_time", "device:hcp_device_utilization_ratio:avg_1m"),
    "hashrate_hs": ("sum", "avg_over_time", "device:hcp_device_hashrate_hashes_per_second:avg_1m"),
}


def _label_value(value: str) -> str:
    """A PromQL string literal (the label value is also checked at the edge)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def promql(value: str, scope: Scope, subject: str, step_seconds: int) -> str:
    across, over_time, series = _QUERIES[value]
    label = "device" if scope is Scope.DEVICE else "facility"
    # GPUs only, as the store records them: an ASIC's series carry kind="asic".
    return (f"{across}({over_time}({series}{{kind=\"gpu\",{label}={_label_value(subject)}}}"
            f"[{step_seconds}s]))")


class PrometheusHistory:
    def __init__(self, url: str, timeout_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._client.close()

    def ready(self) -> bool:
        try:
            return self._client.get("/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def _range(self, expr: str, span: Span) -> list[tuple[float, str]]:
        # Prometheus evaluates at start, start+step, ... and a [step] range looks back from
        # each: the point evaluated at t summarises the step that ends at t.
        params = {"query": expr, "start": span.first_epoch + span.step,
                  "end": int(span.end.timestamp()), "step": span.step}
        try:
            r = self._client.get("/api/v1/query_range", params=params)
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise HistoryUnavailableError("the metrics history (Prometheus) did not answer") from exc
        if r.status_code != 200 or body.get("status") != "success":
            log.warning("Prometheus refused %s: %s %s", expr, r.status_code,
                        str(body.get("error", ""))[:200])
            raise HistoryUnavailableError("the metrics history (Prometheus) refused the query")
        result = body.get("data", {}).get("result", [])
        return [tuple(v) for v in result[0]["values"]] if result else []  # type: ignore[misc]

    def history(self, scope: Scope, subject: str, window: Window, now: datetime) -> History:
        span = Span.of(window, now)
        columns: dict[str, dict[int, float]] = {}
        for value in _QUERIES:
            col: dict[int, float] = {}
            for t, v in self._range(promql(value, scope, subject, span.step), span):
                i = span.index_of(int(float(t)) - span.step)
                x = float(v)
                if i is not None and math.isfinite(x):
                    col[i] = x
            columns[value] = col
        found = {}
        for i, n in columns["devices"].items():
            fields: dict[str, Any] = {k: columns[k].get(i) for k in _QUERIES if k != "devices"}
            found[i] = HistoryPoint(at=span.at(i), devices=int(n), **fields)
        return History(scope=scope, subject=subject, window=window, step_seconds=span.step,
                       start=span.start, end=span.end, source=HistorySource.PROMETHEUS,
                       points=span.dense(found))
