"""JSON-lines logs with a correlation id that follows one request across processes.

The HTTP edge sets the id (``serve_apps.correlation``: the client's ``X-Request-ID`` or a
new one); code that sends a message to an actor copies ``current_correlation_id()`` into it;
the actor side runs its handler inside ``correlation(msg.correlation_id)`` or under the
``correlated`` decorator. Every log record then carries ``correlation_id``, so one workload or
claim can be followed through the API, the router and the GPU actor with one grep.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, TypeVar

from pythonjsonlogger.json import JsonFormatter

_CORRELATION: ContextVar[str | None] = ContextVar("hcp_correlation_id", default=None)
# What a client may send as X-Request-ID: short, printable, no separators that break logs.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

F = TypeVar("F", bound=Callable[..., Any])


def current_correlation_id() -> str | None:
    return _CORRELATION.get()


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def accept_correlation_id(candidate: str | None) -> str:
    """The client's id when it is a sane token, else a new one (ids end up in every log line)."""
    if candidate and _VALID_ID.match(candidate):
        return candidate
    return new_correlation_id()


def set_correlation_id(value: str | None) -> Token[str | None]:
    return _CORRELATION.set(value)


def reset_correlation_id(token: Token[str | None]) -> None:
    _CORRELATION.reset(token)


@contextmanager
def correlation(value: str | None) -> Iterator[str | None]:
    """Run a block under ``value`` (None keeps the current id: a message that carried none)."""
    if value is None:
        yield _CORRELATION.get()
        return
    token = _CORRELATION.set(value)
    try:
        yield value
    finally:
        _CORRELATION.reset(token)


def correlated(fn: F) -> F:
    """Accept a ``correlation_id=`` keyword (what a caller copied in) and run ``fn`` under it.

    For actor methods: ``handle.submit.remote(spec, correlation_id=current_correlation_id())``.
    """
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args: Any, correlation_id: str | None = None, **kw: Any) -> Any:
            with correlation(correlation_id):
                return await fn(*args, **kw)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, correlation_id: str | None = None, **kw: Any) -> Any:
        with correlation(correlation_id):
            return fn(*args, **kw)

    return wrapper  # type: ignore[return-value]


class CorrelationFilter(logging.Filter):
    """Adds ``correlation_id`` (or None) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlation_id"):
            record.correlation_id = _CORRELATION.get()
        return True


class HcpJsonFormatter(JsonFormatter):
    """One JSON object per line: time (UTC ISO 8601), level, logger, message, correlation_id,
    process, plus any ``extra=`` fields and the exception text."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s %(correlation_id)s %(process)d",
                         rename_fields={"levelname": "level", "name": "logger"},
                         rename_fields_keep_missing=True)

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["time"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat()


def use_json_lines(handler: logging.Handler) -> None:
    """Reformat one of the platform's handlers as JSON lines with the correlation id
    (``HCP_OPS__LOG_JSON=true``); idempotent."""
    if not isinstance(handler.formatter, HcpJsonFormatter):
        handler.setFormatter(HcpJsonFormatter())
    if not any(isinstance(f, CorrelationFilter) for f in handler.filters):
        handler.addFilter(CorrelationFilter())
