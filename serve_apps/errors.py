"""hcp's typed errors mapped to HTTP, once, for every FastAPI app of the platform.

Every refusal leaves as JSON ``{"error": CODE, "detail": ..., **context}`` with the status
the error class declares (``HcpError.to_dict``: a server fault names no host, path or SQL).
An error with ``retry_after`` (``RateLimitedError``, ``DependencyUnavailableError``) also sets
``Retry-After``. The OpenAI-compatible routes (``/v1/...``) answer in OpenAI's shape instead,
``{"error": {"message", "type", "param", "code"}}``, so the official clients show the message
and code rather than a bare status.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hcp.errors import HcpError

log = logging.getLogger(__name__)

OPENAI_PREFIX = "/v1/"

_STATUS_CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}

# OpenAI's error types by status (their API reference, "Error codes").
_OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 404: "invalid_request_error",
                 409: "invalid_request_error", 429: "rate_limit_error"}

# The error body every documented refusal uses (for OpenAPI `responses=`).
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {}},
}


def _openai_body(status: int, body: dict[str, Any]) -> dict[str, Any]:
    detail = body.get("detail")
    param = body.get("param") or body.get("field")
    if isinstance(detail, list):  # request validation: a list of field problems
        first = detail[0] if detail else {}
        loc = [p for p in first.get("loc", []) if p != "body"]
        param = param or (".".join(loc) or None)
        message = "; ".join(_problem(d) for d in detail) or "invalid request"
    else:
        message = str(detail)
    kind = _OPENAI_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": body["error"]}}


def _problem(d: dict[str, Any]) -> str:
    where = ".".join(p for p in d.get("loc", []) if p != "body")
    return f"{where}: {d.get('msg', '')}" if where else str(d.get("msg", ""))


def json_error(body: dict[str, Any], status: int, path: str = "",
               headers: dict[str, str] | None = None) -> JSONResponse:
    if path.startswith(OPENAI_PREFIX):
        body = _openai_body(status, body)
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(exc: HcpError, path: str = "") -> JSONResponse:
    headers = {}
    # RateLimitedError (429) and DependencyUnavailableError (503) say when to come back.
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return json_error(exc.to_dict(), exc.http_status, path, headers)


def _jsonable_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        out.append({"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
                    "type": str(e.get("type", ""))})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HcpError)
    async def _hcp_error(request: Request, exc: HcpError) -> JSONResponse:
        if exc.http_status >= 500:
            log.warning("%s: %s", exc.code, exc.detail)
        return error_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return json_error({"error": "validation_error",
                           "detail": _jsonable_errors(list(exc.errors()))}, 422, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        return json_error({"error": code, "detail": exc.detail}, exc.status_code,
                          request.url.path, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never a bare 500 page: log the cause, answer with the typed body.
        log.exception("unhandled error")
        return json_error({"error": "internal_error", "detail": "internal error"}, 500,
                          request.url.path)
