"""The edge guard every FastAPI app of the platform runs behind (``harden``).

Before any route (or FastAPI's own body parsing) sees a request, it checks what no route
should have to think about:
- the path and query string: no NUL byte and valid UTF-8 (PostgreSQL refuses NUL in text,
  so ``/claims/a%00b`` used to reach the store as a 500);
- a JSON body: at most ``max_bytes`` (413, also for a chunked body), nested at most
  ``max_depth`` levels (the 100,000-``[`` body that overflowed the C stack), finite numbers of
  sane length, no NUL or lone surrogate (``hcp.jsonsafe``). Other bodies (multipart uploads,
  octet streams) go to their routes, which cap them while streaming;
- WebSocket messages: at most ``max_ws_message_bytes`` (the socket is closed with 1009).
It also pins the interpreter's recursion limit: importing ``py_ecc`` (through web3 and
eth-account) raises it to 100,000 for the whole process, which is what let ``json.loads``
recurse until the process died.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI

from hcp.errors import BadRequestError, BodyTooLargeError, HcpError
from hcp.jsonsafe import JsonLimits, is_safe_text
from hcp.jsonsafe import loads as safe_loads
from serve_apps.correlation import CorrelationIdMiddleware
from serve_apps.errors import error_response, install_error_handlers

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# py-evm (the in-process chain) needs 1,024 EVM frames of Python recursion (eth/__init__.py
# asks for 12,288); nothing in the API needs more, and C-level recursion (json, repr) stays
# far from the stack's end at this depth.
RECURSION_LIMIT = 1024 * 12
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class EdgeLimits:
    json: JsonLimits = JsonLimits()
    max_ws_message_bytes: int = 64 * 1024


def pin_recursion_limit(limit: int = RECURSION_LIMIT) -> None:
    """Undo what a dependency did to the process-wide recursion limit (see module doc)."""
    if sys.getrecursionlimit() != limit:
        log.debug("recursion limit %d -> %d", sys.getrecursionlimit(), limit)
        sys.setrecursionlimit(limit)


def _is_json(content_type: str) -> bool:
    ct = content_type.split(";", 1)[0].strip().lower()
    # FastAPI parses a body without a content type as JSON too.
    return ct in ("", "application/json") or ct.endswith("+json")


def check_request_line(scope: Scope) -> None:
    path = scope.get("path", "")
    if not is_safe_text(path):
        raise BadRequestError("the path contains a NUL byte or invalid text")
    raw_query = scope.get("query_string", b"")
    if raw_query:
        decoded = unquote_to_bytes(raw_query.replace(b"+", b" "))
        if b"\x00" in decoded:
            raise BadRequestError("the query string contains a NUL byte")
        try:
            decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequestError("the query string is not UTF-8") from None


class EdgeGuard:
    def __init__(self, app: ASGIApp, limits: EdgeLimits = EdgeLimits()) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if sys.getrecursionlimit() != RECURSION_LIMIT:  # a lazy import may have raised it again
            pin_recursion_limit()
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            check_request_line(scope)
        except HcpError as exc:
            if kind == "http":
                await error_response(exc, scope.get("path", ""))(scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 4400})
            return
        if kind == "websocket":
            await self.app(scope, self._ws_receive(receive, send), send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if scope.get("method") not in _BODY_METHODS or not _is_json(content_type):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_json_body(headers, receive)
            if body:
                safe_loads(body, self.limits.json)
        except HcpError as exc:
            await error_response(exc, scope.get("path", ""))(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_json_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        cap = self.limits.json.max_bytes
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > cap:
            raise BodyTooLargeError(f"the body exceeds {cap} bytes", limit=cap)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise BodyTooLargeError(f"the body exceeds {cap} bytes", limit=cap)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _ws_receive(self, receive: Receive, send: Send) -> Receive:
        cap = self.limits.max_ws_message_bytes

        async def guarded() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                data = message.get("text") or message.get("bytes") or b""
                if len(data) > cap:
                    await send({"type": "websocket.close", "code": 1009,
                                "reason": f"message over {cap} bytes"})
                    return {"type": "websocket.disconnect", "code": 1009}
            return message

        return guarded


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # then the real channel: a disconnect arrives there

    return replay


def harden(app: FastAPI, limits: EdgeLimits | None = None) -> FastAPI:
    """Typed error handlers, the edge guard and the recursion pin, for one app."""
    install_error_handlers(app)
    app.add_middleware(EdgeGuard, limits=limits or EdgeLimits())
    pin_recursion_limit()
    return app


def new_app(settings: Any, *, title: str, version: str, description: str = "") -> FastAPI:
    """A FastAPI app of the platform: hardened, with its API docs served from the package
    (``/docs``; Swagger UI's assets come from ``swagger_ui_bundle``, not a CDN, so the page
    works offline)."""
    app = FastAPI(title=title, version=version, description=description, docs_url=None,
                  redoc_url=None)
    harden(app, limits_from_settings(settings))
    mount_docs(app)
    # Outermost: the request's correlation id is set before anything logs, and echoed.
    app.add_middleware(CorrelationIdMiddleware)
    return app


def mount_docs(app: FastAPI, path: str = "/docs") -> None:
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    assets = f"{path}/assets"
    app.mount(assets, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get(path, include_in_schema=False)
    async def _docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - docs",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png")


def limits_from_settings(settings: Any) -> EdgeLimits:
    return EdgeLimits(
        json=JsonLimits(max_bytes=settings.api.max_json_bytes, max_depth=settings.api.max_json_depth),
        max_ws_message_bytes=settings.api.max_ws_message_bytes,
    )


__all__ = ["EdgeGuard", "EdgeLimits", "harden", "limits_from_settings", "pin_recursion_limit"]


def server_config(app: Any, settings: Any, host: str, port: int) -> Any:
    """uvicorn's config for an app served on its own (not behind Serve's proxy).

    uvicorn believes ``X-Forwarded-For`` from loopback by default, so any local process could
    pick its own rate key; here it is believed only from ``HCP_API__TRUSTED_PROXIES`` (none:
    the peer address is the client).
    """
    import uvicorn

    trusted = list(settings.api.trusted_proxies)
    return uvicorn.Config(app, host=host, port=port, proxy_headers=bool(trusted),
                          forwarded_allow_ips=",".join(trusted) if trusted else None)


def serve_standalone(app: Any, settings: Any, host: str, port: int) -> None:
    import uvicorn

    uvicorn.Server(server_config(app, settings, host, port)).run()
