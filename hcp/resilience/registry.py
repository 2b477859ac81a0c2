"""The breakers of the platform's dependencies, one per dependency, shared by every call site
of a process (sync and async alike).

    breakers = BreakerRegistry(settings.ops.breakers, sink)
    with breakers.guard(Dependency.REDIS):
        client.incr(key)

    @breakers.protect(Dependency.CHAIN)
    async def head() -> int: ...
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

from hcp.observability.sink import MetricsSink, NullSink
from hcp.resilience.breaker import DependencyBreaker
from hcp.resilience.settings import BreakerSettings

F = TypeVar("F", bound=Callable[..., Any])


class Dependency(str, Enum):
    POSTGRES = "postgres"
    REDIS = "redis"
    CHAIN = "chain"
    IMAGE_STORE = "image_store"


class BreakerRegistry:
    def __init__(self, settings: BreakerSettings | None = None, sink: MetricsSink | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        settings = settings or BreakerSettings()
        self._breakers = {
            dep: DependencyBreaker(dep.value, getattr(settings, dep.value), sink=sink or NullSink(),
                                   clock=clock)
            for dep in Dependency
        }

    def get(self, dependency: Dependency | str) -> DependencyBreaker:
        return self._breakers[Dependency(dependency)]

    def guard(self, dependency: Dependency | str) -> Any:
        """Context manager for one sync call."""
        return self.get(dependency).guard()

    def aguard(self, dependency: Dependency | str) -> Any:
        """Async context manager for one async call (cancelled at the dependency's timeout)."""
        return self.get(dependency).aguard()

    def protect(self, dependency: Dependency | str) -> Callable[[F], F]:
        """Decorator: every call of the function goes through the dependency's breaker."""
        breaker = self.get(dependency)

        def decorate(fn: F) -> F:
            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def async_call(*args: Any, **kwargs: Any) -> Any:
                    async with breaker.aguard():
                        return await fn(*args, **kwargs)

                return async_call  # type: ignore[return-value]

            @functools.wraps(fn)
            def call(*args: Any, **kwargs: Any) -> Any:
                with breaker.guard():
                    return fn(*args, **kwargs)

            return call  # type: ignore[return-value]

        return decorate

    def states(self) -> dict[str, str]:
        """Every breaker's state, exported to the metric as it is read."""
        return {dep.value: b.refresh() for dep, b in self._breakers.items()}


_PROCESS_LOCK = threading.Lock()
_PROCESS: BreakerRegistry | None = None


def process_breakers() -> BreakerRegistry:
    """This process's breakers: every call site of one dependency in a process (the API
    replica's rate limiter, an actor's chain client, the image store's RPC) counts its
    failures on the same breaker. Default policies until ``configure_process_breakers``."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None:
            _PROCESS = BreakerRegistry()
        return _PROCESS


def configure_process_breakers(settings: BreakerSettings, sink: MetricsSink | None = None,
                               clock: Callable[[], float] = time.monotonic) -> BreakerRegistry:
    """Set this process's breakers from ``HCP_OPS__BREAKERS__*`` and where their state is
    exported; called once where a process starts (an actor's or a replica's constructor).
    Call sites look their breaker up at each call, so those built before use these too."""
    global _PROCESS
    with _PROCESS_LOCK:
        _PROCESS = BreakerRegistry(settings, sink, clock)
        return _PROCESS


def guard_of(dependency: Dependency, breaker: DependencyBreaker | None = None) -> Any:
    """The guard for one sync call: ``breaker`` when a caller injected one (tests), else the
    process's breaker of ``dependency``."""
    return (breaker or process_breakers().get(dependency)).guard()
