"""Name → model factory, so configuration can pick an inference model by name."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hcp.errors import ConfigError
from hcp.inference.base import InferenceModel
from hcp.inference.minilm import MODEL_NAME as MINILM_NAME
from hcp.inference.minilm import MiniLMEmbedder

logger = logging.getLogger(__name__)

# A factory takes the device ("cuda", "cuda:1", "cpu", or None for the default) and
# returns an unloaded model: loading is the worker's decision, not the registry's.
ModelFactory = Callable[[str | None], InferenceModel]

_factories: dict[str, ModelFactory] = {}
_lock = threading.Lock()


def register_model(name: str, factory: ModelFactory, *, replace: bool = False) -> None:
    """Register ``factory`` under ``name``; re-registering needs ``replace=True``."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("model name must be a non-empty string")
    if not callable(factory):
        raise ConfigError(f"factory for model {name!r} is not callable")
    with _lock:
        if name in _factories and not replace:
            raise ConfigError(f"inference model {name!r} is already registered", model=name)
        _factories[name] = factory
    logger.debug("registered inference model %s", name)


def unregister_model(name: str) -> None:
    """Forget ``name`` (tests and plug-in reloads); unknown names are ignored."""
    with _lock:
        _factories.pop(name, None)


def known_models() -> list[str]:
    with _lock:
        return sorted(_factories)


def create_model(name: str, device: str | None = None) -> InferenceModel:
    """A new, unloaded model called ``name`` for ``device``; unknown names raise ``ConfigError``."""
    with _lock:
        factory = _factories.get(name)
    if factory is None:
        known = known_models()
        raise ConfigError(
            f"unknown inference model {name!r}; known models: {', '.join(known)}",
            model=name,
            known=known,
        )
    return factory(device)


def _minilm(device: str | None) -> InferenceModel:
    return MiniLMEmbedder(device=device)


register_model(MINILM_NAME, _minilm)
