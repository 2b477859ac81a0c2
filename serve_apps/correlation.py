"""ASGI middleware that sets the correlation id of each request at the HTTP edge.

The client's ``X-Request-ID`` is kept when it is a sane token, otherwise a new id is made; it
is set in the request's context (``hcp.observability.logs``) for every log line written while
the request is handled, and echoed in the response's ``X-Request-ID`` header.

Mount it with ``app.add_middleware(CorrelationIdMiddleware)``.
"""

from __future__ import annotations

from hcp.observability.logs import (
    accept_correlation_id,
    reset_correlation_id,
    set_correlation_id,
)
from serve_apps.http_metrics import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"


class CorrelationIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sent = next((v for k, v in scope.get("headers", []) if k.lower() == HEADER), None)
        cid = accept_correlation_id(sent.decode("latin-1") if sent else None)
        scope.setdefault("state", {})["correlation_id"] = cid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                headers.append((HEADER, cid.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        token = set_correlation_id(cid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            reset_correlation_id(token)
