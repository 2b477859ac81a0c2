"""Inference context: embedding models that GPU workers keep resident and warmed.

Importing this package does not import torch; models import it when constructed.
"""

from hcp.inference.base import InferenceModel, l2_normalize, validate_texts
from hcp.inference.minilm import MiniLMEmbedder, default_device
from hcp.inference.registry import (
    ModelFactory,
    create_model,
    known_models,
    register_model,
    unregister_model,
)

__all__ = [
    "InferenceModel",
    "MiniLMEmbedder",
    "ModelFactory",
    "create_model",
    "default_device",
    "known_models",
    "l2_normalize",
    "register_model",
    "unregister_model",
    "validate_texts",
]
