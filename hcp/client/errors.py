"""The API's refusals as hcp's own typed errors.

Every refusal the platform sends is ``{"error": CODE, "detail": ..., **context}``. The SDK
raises the ``hcp.errors`` class that declares that code (``workload_not_found`` ->
``WorkloadNotFoundError``), so ``except NotFoundError`` works the same on either side of the
wire. A code with no class of its own (another area's, or a newer server's) is raised as the
class of its HTTP status family with the server's code kept on the instance. Every raised
error carries ``http_status`` (as answered) and ``body`` (the JSON as sent).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

import hcp.errors as hcp_errors
from hcp.errors import (
    AuthenticationError,
    ConflictError,
    HcpError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    UnexpectedResponseError,
    ValidationError,
)

_BY_STATUS: dict[int, type[HcpError]] = {
    400: ValidationError, 401: AuthenticationError, 403: PermissionDeniedError,
    404: NotFoundError, 409: ConflictError, 413: PayloadTooLargeError, 415: ValidationError,
    422: ValidationError, 429: RateLimitedError, 502: ServiceUnavailableError,
    503: ServiceUnavailableError, 504: ServiceUnavailableError,
}


@functools.cache
def error_classes() -> Mapping[str, type[HcpError]]:
    """``code`` -> class, over every error class ``hcp.errors`` declares."""
    out: dict[str, type[HcpError]] = {}
    for _, cls in inspect.getmembers(hcp_errors, inspect.isclass):
        if issubclass(cls, HcpError) and cls.__module__ == hcp_errors.__name__:
            out.setdefault(cls.code, cls)
    return out


def _detail_text(detail: Any) -> tuple[str, list[Any] | None]:
    """A readable detail; FastAPI's list of field problems is also kept as ``problems``."""
    if isinstance(detail, list):
        parts = []
        for p in detail:
            if isinstance(p, Mapping):
                loc = ".".join(str(x) for x in p.get("loc", ()))
                parts.append(f"{loc}: {p.get('msg', '')}" if loc else str(p.get("msg", "")))
            else:
                parts.append(str(p))
        return "; ".join(parts) or "invalid input", detail
    return ("" if detail is None else str(detail)), None


def _build(cls: type[HcpError], detail: str, context: dict[str, Any]) -> HcpError:
    try:
        return cls(detail, **context)
    except TypeError:  # a class with its own constructor (e.g. required fields the body lacks)
        exc = cls.__new__(cls)
        HcpError.__init__(exc, detail, **context)
        return exc


def error_from_body(status: int, body: Any, retry_after_header: str | None = None) -> HcpError:
    """The typed error for one refusal (``body`` as decoded JSON, anything if it was not)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("error"), str):
        cls = _BY_STATUS.get(status, UnexpectedResponseError)
        exc = _build(cls, f"HTTP {status}: {str(body)[:300]}", {})
        exc.http_status = status  # type: ignore[misc]
        exc.body = body  # type: ignore[attr-defined]
        return exc
    code = body["error"]
    detail, problems = _detail_text(body.get("detail"))
    context = {k: v for k, v in body.items() if k not in ("error", "detail")}
    if problems is not None:
        context["problems"] = problems
    cls = error_classes().get(code) or _BY_STATUS.get(status) or UnexpectedResponseError
    if issubclass(cls, RateLimitedError) and "retry_after" not in context:
        context["retry_after"] = _seconds(retry_after_header, 1)
    exc = _build(cls, detail, context)
    if exc.code != code:
        exc.code = code  # type: ignore[misc]  # the server's code, on the family's class
    exc.http_status = status  # type: ignore[misc]
    exc.body = dict(body)  # type: ignore[attr-defined]
    return exc


def _seconds(value: str | None, default: int) -> int:
    try:
        return max(0, int(float(value))) if value is not None else default
    except ValueError:
        return default


def error_from_message(body: Mapping[str, Any]) -> HcpError:
    """A refusal sent over the live WebSocket (no HTTP status: the code's own class says it)."""
    cls = error_classes().get(str(body.get("error")))
    return error_from_body(cls.http_status if cls else 400, body)
