"""One dependency's circuit breaker, on the ``circuitbreaker`` library, for sync and async calls.

Closed: calls go through; ``failure_threshold`` consecutive failures open it. Open: calls fail
fast with ``DependencyUnavailableError`` (503, ``retry_after`` = seconds left) without touching
the dependency. After ``recovery_seconds`` it is half-open: one probe call at a time goes
through (the others fail fast); a success closes it, a failure opens it again.

A failure is a dependency's own trouble (connection refused or reset, timeouts, a pool that
cannot connect, an hcp 503); a business answer (a unique-key conflict, a revert, a 404) means
the dependency works and counts as a success. Failures leave as ``DependencyUnavailableError``
too, so a caller sees one typed 503 whether the breaker is open or the call just failed.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import Any

from circuitbreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN, CircuitBreaker

from hcp.errors import DependencyUnavailableError, HcpError
from hcp.observability.sink import MetricsSink, NullSink
from hcp.resilience.settings import BreakerPolicy

# Exceptions that mean "the dependency is in trouble", by qualified class name so the core
# imports none of the client libraries (each is matched along the exception's MRO).
FAILURE_CLASSES = frozenset({
    "sqlalchemy.exc.OperationalError", "sqlalchemy.exc.InterfaceError",
    "sqlalchemy.exc.TimeoutError", "sqlalchemy.exc.DisconnectionError",
    "psycopg.OperationalError", "redis.exceptions.ConnectionError",
    "redis.exceptions.TimeoutError", "redis.exceptions.BusyLoadingError",
    "httpx.TransportError", "requests.exceptions.ConnectionError", "requests.exceptions.Timeout",
    "web3.exceptions.TimeExhausted",
})


def is_dependency_failure(exc: BaseException) -> bool:
    if isinstance(exc, HcpError):
        return exc.http_status == 503
    if isinstance(exc, OSError | TimeoutError):  # ConnectionError, socket errors, timeouts
        return True
    return any(f"{c.__module__}.{c.__qualname__}" in FAILURE_CLASSES for c in type(exc).__mro__)


class _ClockedBreaker(CircuitBreaker):  # type: ignore[misc]
    """The library's breaker on an injected monotonic clock (tests drive time)."""

    def __init__(self, clock: Callable[[], float], **kwargs: Any) -> None:
        self._clock = clock
        super().__init__(**kwargs)
        self._opened = clock()

    @property
    def open_remaining(self) -> float:  # type: ignore[override]
        return float(self._opened + self._recovery_timeout - self._clock())

    def __exit__(self, exc_type: type[BaseException] | None, exc_value: BaseException | None,
                 tb: TracebackType | None) -> bool:
        before = self._failure_count
        result = bool(super().__exit__(exc_type, exc_value, tb))
        if self._failure_count > before and self._state == STATE_OPEN:
            self._opened = self._clock()  # the library stamped its own clock
        return result


class DependencyBreaker:
    def __init__(self, dependency: str, policy: BreakerPolicy, *,
                 sink: MetricsSink | None = None, clock: Callable[[], float],
                 is_failure: Callable[[BaseException], bool] = is_dependency_failure) -> None:
        self.dependency = dependency
        self.policy = policy
        self._sink = sink or NullSink()
        self._clock = clock
        self._breaker = _ClockedBreaker(
            clock, failure_threshold=policy.failure_threshold,
            recovery_timeout=policy.recovery_seconds, name=dependency,
            expected_exception=lambda _t, exc: is_failure(exc))
        self._probe = threading.Lock()
        self._exported = ""
        self._export_state()

    @property
    def state(self) -> str:
        """closed, open or half_open."""
        return str(self._breaker.state)

    @property
    def timeout_s(self) -> float:
        """The call limit, for clients whose own timeout must be set (sync calls)."""
        return self.policy.timeout_seconds

    def _admit(self) -> bool:
        """Whether this call may go on; True when it is the half-open probe (holds the lock)."""
        state = self.state
        if state == STATE_OPEN:
            self._refuse(math.ceil(self._breaker.open_remaining))
        if state == STATE_HALF_OPEN:
            if not self._probe.acquire(blocking=False):
                self._refuse(1)  # another call is probing right now
            self._export_state()
            return True
        return False

    def _refuse(self, retry_after: int) -> None:
        self._sink.inc("hcp_dependency_calls_total", dependency=self.dependency,
                       outcome="rejected")
        raise DependencyUnavailableError(
            f"{self.dependency} is unavailable (circuit open); retry later",
            retry_after=max(1, retry_after), dependency=self.dependency)

    def _finish(self, exc: BaseException | None, started: float, probing: bool) -> None:
        try:
            if exc is not None and not isinstance(exc, Exception):
                return  # cancelled from outside (not by our timeout): says nothing of the dependency
            slow = self._clock() - started > self.policy.timeout_seconds
            if exc is None and slow:
                exc = TimeoutError(f"{self.dependency} answered after its time limit")
            failed = exc is not None and is_dependency_failure(exc)
            if exc is None or not failed:
                self._breaker.__exit__(None, None, None)
            else:
                self._breaker.__exit__(type(exc), exc, None)
            outcome = ("timeout" if isinstance(exc, TimeoutError) and failed
                       else "failure" if failed else "ok")
            self._sink.inc("hcp_dependency_calls_total", dependency=self.dependency,
                           outcome=outcome)
            self._export_state()
        finally:
            if probing:
                self._probe.release()

    def _unavailable(self, exc: BaseException) -> DependencyUnavailableError:
        retry = math.ceil(self._breaker.open_remaining) if self.state == STATE_OPEN else 1
        what = "did not answer in time" if isinstance(exc, TimeoutError) else "failed"
        return DependencyUnavailableError(f"{self.dependency} {what}",
                                          retry_after=max(1, retry), dependency=self.dependency)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run a sync call through the breaker (``with breaker.guard(): ...``)."""
        probing = self._admit()
        started = self._clock()
        try:
            yield
        except BaseException as exc:
            self._finish(exc, started, probing)
            if is_dependency_failure(exc) and not isinstance(exc, HcpError):
                raise self._unavailable(exc) from exc
            raise
        self._finish(None, started, probing)

    @asynccontextmanager
    async def aguard(self) -> AsyncIterator[None]:
        """Run an async call through the breaker, cancelled at ``timeout_seconds``."""
        probing = self._admit()
        started = self._clock()
        try:
            async with asyncio.timeout(self.policy.timeout_seconds):
                yield
        except BaseException as exc:
            self._finish(exc, started, probing)
            if is_dependency_failure(exc) and not isinstance(exc, HcpError):
                raise self._unavailable(exc) from exc
            raise
        self._finish(None, started, probing)

    def _export_state(self) -> None:
        state = self.state
        if state != self._exported:
            self._sink.set_state("hcp_dependency_breaker_state", "state", state,
                                 dependency=self.dependency)
            self._exported = state

    def refresh(self) -> str:
        """Export the state now (an open breaker turns half-open by time alone)."""
        self._export_state()
        return self.state


__all__ = ["STATE_CLOSED", "STATE_HALF_OPEN", "STATE_OPEN", "DependencyBreaker",
           "is_dependency_failure"]
