"""Circuit breakers and call timeouts on the platform's dependencies."""

from hcp.resilience.breaker import DependencyBreaker, is_dependency_failure
from hcp.resilience.registry import (
    BreakerRegistry,
    Dependency,
    configure_process_breakers,
    guard_of,
    process_breakers,
)
from hcp.resilience.settings import BreakerPolicy, BreakerSettings

__all__ = ["BreakerPolicy", "BreakerRegistry", "BreakerSettings", "Dependency",
           "DependencyBreaker", "configure_process_breakers", "guard_of", "is_dependency_failure",
           "process_breakers"]
