"""Circuit breakers and call timeouts on the platform's dependencies."""

from hcp.resilience.breaker import DependencyBreaker, is_dependency_failure
from hcp.resilience.registry import BreakerRegistry, Dependency
from hcp.resilience.settings import BreakerPolicy, BreakerSettings

__all__ = ["BreakerPolicy", "BreakerRegistry", "BreakerSettings", "Dependency",
           "DependencyBreaker", "is_dependency_failure"]
