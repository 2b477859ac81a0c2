"""One request to the API as a value (``Call``), and the two loops that send it with retries.

A ``Call`` says what to send, how to read the answer and how safe it is to send twice. The
sync and the async transport differ only in how they wait; when to retry is decided once,
in ``RetryPolicy.plan``:

- the request never reached the server (connection refused, connect timeout): always retry;
- 429: the server refused before acting; wait its ``Retry-After`` and retry (a wait longer
  than ``max_wait_s`` is raised instead of slept through);
- a lost answer (read timeout, reset) or 502/503/504: retry only a call that is ``SAFE``
  (reads, setting a mode, anything idempotent by nature) or ``KEYED`` (it carries an
  idempotency key the server dedupes on: workload submissions, mints, signed claims).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

import httpx
import pydantic

from hcp.client.errors import error_from_body
from hcp.errors import ApiUnreachableError, HcpError, RateLimitedError, UnexpectedResponseError

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)


class Safety(Enum):
    SAFE = "safe"  # sending it twice does what sending it once does
    KEYED = "keyed"  # the server dedupes it by a key the call carries
    UNSAFE = "unsafe"  # a second send may act twice: retried only when it cannot have arrived


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    data: Mapping[str, Any] | None = None
    files: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    safety: Safety = Safety.SAFE
    ok: tuple[int, ...] = (200,)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; ``max_attempts`` counts the first try."""

    max_attempts: int = 4
    backoff_s: float = 0.25
    max_backoff_s: float = 8.0
    max_wait_s: float = 60.0
    statuses: frozenset[int] = frozenset({502, 503, 504})

    def backoff(self, attempt: int, rng: random.Random) -> float:
        raw = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        return raw * (0.5 + rng.random() / 2)

    def plan(self, call: Call[Any], attempt: int, error: HcpError, sent: bool,
             rng: random.Random) -> float | None:
        """Seconds to wait before the next attempt, or None: raise ``error`` now."""
        if attempt >= self.max_attempts:
            return None
        if isinstance(error, RateLimitedError):
            wait = float(getattr(error, "retry_after", 1) or 0)
            return wait if wait <= self.max_wait_s else None
        if not sent:
            return self.backoff(attempt, rng)
        status = getattr(error, "http_status", None)
        lost = isinstance(error, ApiUnreachableError) or status in self.statuses
        if lost and call.safety is not Safety.UNSAFE:
            return self.backoff(attempt, rng)
        return None


def _unreachable(base_url: str, exc: httpx.TransportError) -> ApiUnreachableError:
    return ApiUnreachableError(f"the API at {base_url} did not answer: {type(exc).__name__}: {exc}")


def _never_sent(exc: httpx.TransportError) -> bool:
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


def answer(call: Call[T], resp: httpx.Response) -> T:
    """The parsed result of a success, or the typed error of a refusal (raised)."""
    if resp.status_code in call.ok:
        try:
            return call.parse(resp)
        except (ValueError, pydantic.ValidationError) as exc:
            raise UnexpectedResponseError(
                f"{call.method} {call.path}: unreadable answer: {exc}"[:500]) from None
    try:
        body: Any = resp.json()
    except ValueError:
        body = resp.text[:500]
    raise error_from_body(resp.status_code, body, resp.headers.get("Retry-After"))


def model(cls: type[M]) -> Callable[[httpx.Response], M]:
    return lambda resp: cls.model_validate(resp.json())


def models(cls: type[M]) -> Callable[[httpx.Response], list[M]]:
    return lambda resp: [cls.model_validate(x) for x in resp.json()]


class _Base:
    def __init__(self, base_url: str, token: str | None, retry: RetryPolicy | None,
                 seed: int | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.retry = retry or RetryPolicy()
        self._rng = random.Random(seed)

    def _headers(self, call: Call[Any]) -> dict[str, str]:
        headers = dict(call.headers)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _request(self, call: Call[Any]) -> dict[str, Any]:
        return {"method": call.method, "url": call.path, "params": call.params, "json": call.json,
                "data": call.data, "files": call.files, "headers": self._headers(call)}


class SyncTransport(_Base):
    def __init__(self, http: httpx.Client, token: str | None = None, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, seed: int | None = None) -> None:
        super().__init__(str(http.base_url), token, retry, seed)
        self.http = http
        self._sleep = sleep

    def run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return answer(call, self.http.request(**self._request(call)))
            except httpx.TransportError as exc:
                error: HcpError = _unreachable(self.base_url, exc)
                sent = not _never_sent(exc)
                cause: BaseException = exc
            except HcpError as exc:
                error, sent, cause = exc, True, exc
            delay = self.retry.plan(call, attempt, error, sent, self._rng)
            if delay is None:
                raise error from (cause if cause is not error else None)
            log.info("%s %s: %s; retry %d in %.2fs", call.method, call.path, error.code, attempt, delay)
            self._sleep(delay)


class AsyncTransport(_Base):
    def __init__(self, http: httpx.AsyncClient, token: str | None = None,
                 retry: RetryPolicy | None = None,
                 sleep: Callable[[float], Any] = asyncio.sleep, seed: int | None = None) -> None:
        super().__init__(str(http.base_url), token, retry, seed)
        self.http = http
        self._sleep = sleep

    async def run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return answer(call, await self.http.request(**self._request(call)))
            except httpx.TransportError as exc:
                error: HcpError = _unreachable(self.base_url, exc)
                sent = not _never_sent(exc)
                cause: BaseException = exc
            except HcpError as exc:
                error, sent, cause = exc, True, exc
            delay = self.retry.plan(call, attempt, error, sent, self._rng)
            if delay is None:
                raise error from (cause if cause is not error else None)
            log.info("%s %s: %s; retry %d in %.2fs", call.method, call.path, error.code, attempt, delay)
            waited = self._sleep(delay)
            if inspect.isawaitable(waited):
                await waited
