"""ASGI middleware recording every HTTP request by ROUTE TEMPLATE, method and status.

``http_requests_total{route,method,status}``, ``http_request_duration_seconds{route,method}``
and ``hcp_rate_limit_refusals_total{route}`` (429s). The route label is the matched
template (``/api/v1/workloads/{workload_id}``), never the raw path, so a client walking ids
cannot grow the series count; requests no route matched are recorded as ``<unmatched>``.

Mount it on a FastAPI app with ``app.add_middleware(HttpMetricsMiddleware, sink=sink)``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from hcp.observability.catalogue import HTTP_METHODS
from hcp.observability.sink import MetricsSink

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNMATCHED = "<unmatched>"


def route_template(scope: Scope, root_path: str = "") -> str:
    """The template of the route the app matched for ``scope`` (after the app ran)."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    # Inside a mounted sub-app the route is relative to the mount: put the prefix back.
    mounted = str(scope.get("root_path", ""))[len(root_path):]
    return f"{mounted}{template}" or "/"


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, sink: MetricsSink,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.sink = sink
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # An app that raises before answering is answered 500 by the server error middleware.
        status = 500
        root_path = str(scope.get("root_path", ""))

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        start = self.clock()
        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = self.clock() - start
            route = route_template(scope, root_path)
            method = str(scope.get("method", "")).upper()
            if method not in HTTP_METHODS:
                method = "OTHER"
            self.sink.inc("http_requests_total", route=route, method=method, status=str(status))
            self.sink.observe("http_request_duration_seconds", elapsed, route=route,
                              method=method)
            if status == 429:
                self.sink.inc("hcp_rate_limit_refusals_total", route=route)
