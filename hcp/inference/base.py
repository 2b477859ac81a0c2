"""The contract every inference model plugs into.

A GPU worker keeps its inference model resident and warmed next to the mining
kernel, so a mode switch only has to ask "is the model still ready?" That is why
the contract splits readiness in two: ``health_check`` is a flag check cheap
enough to run inside the switch's critical path, while ``probe`` runs a real
forward pass and is what the switch benchmarks time as "first inference after a
switch".

``InferenceModel`` is a template: the public methods validate input, enforce the
output contract and refuse when the model is not loaded; subclasses implement
only the underscored hooks, so no plug-in model can skip those checks.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from hcp.errors import ConfigError, ContextUnavailableError, ValidationError

logger = logging.getLogger(__name__)

# Edge limits for one embed call. A request larger than this belongs in several
# calls (the router batches); longer texts would be truncated by the tokenizer
# anyway, so refusing them early keeps tokenization time bounded.
DEFAULT_MAX_TEXTS = 256
DEFAULT_MAX_TEXT_CHARS = 8192


def validate_texts(texts: object, *, max_texts: int, max_chars: int) -> list[str]:
    """Return ``texts`` as a list, or raise ``ValidationError`` saying what is wrong."""
    # A bare string is a Sequence too; embedding it character by character is never meant.
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise ValidationError("texts must be a list of strings", received=type(texts).__name__)
    if len(texts) == 0:
        raise ValidationError("texts must not be empty")
    if len(texts) > max_texts:
        raise ValidationError(
            f"too many texts: {len(texts)} > {max_texts}", count=len(texts), limit=max_texts
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValidationError(
                f"texts[{i}] must be a string", index=i, received=type(text).__name__
            )
        if not text.strip():
            raise ValidationError(f"texts[{i}] is empty", index=i)
        if len(text) > max_chars:
            raise ValidationError(
                f"texts[{i}] is too long: {len(text)} > {max_chars} characters",
                index=i,
                length=len(text),
                limit=max_chars,
            )
    return list(texts)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalization as float32; zero rows stay zero instead of becoming NaN."""
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    normalized: np.ndarray = out / np.maximum(norms, np.float32(1e-12))
    return normalized


class InferenceModel(ABC):
    """A text-embedding model that a GPU worker keeps resident and warmed.

    Lifecycle: ``load()`` → ``warm()`` → (``embed`` / ``probe`` / ``health_check``)*
    → ``unload()``; ``load()`` may be called again after ``unload()``.
    """

    name: str
    dimensions: int
    device: str

    def __init__(
        self,
        *,
        max_texts: int = DEFAULT_MAX_TEXTS,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    ) -> None:
        if max_texts < 1 or max_text_chars < 1:
            raise ConfigError(
                "max_texts and max_text_chars must be positive",
                max_texts=max_texts,
                max_text_chars=max_text_chars,
            )
        self.max_texts = max_texts
        self.max_text_chars = max_text_chars

    # --- lifecycle (implemented by each model) -------------------------------------

    @property
    @abstractmethod
    def loaded(self) -> bool:
        """True while the weights are resident (between ``load`` and ``unload``)."""

    @abstractmethod
    def load(self) -> None:
        """Put the weights on ``device``. Idempotent: a second call is a no-op."""

    @abstractmethod
    def warm(self) -> None:
        """Run real forward passes at a few batch sizes so kernels and allocations are ready."""

    @abstractmethod
    def unload(self) -> None:
        """Free the weights (and device caches). Used by the cold-switch baseline."""

    @abstractmethod
    def health_check(self) -> bool:
        """Cheap readiness: weights resident on ``device``, warmed, not unloaded.

        Runs inside a latency-critical mode switch, so it must not run a forward
        pass or touch the device synchronously; well under a millisecond.
        """

    @abstractmethod
    def resident_bytes(self) -> int:
        """Bytes of weights and buffers held on the device (0 when unloaded)."""

    # --- hooks behind the checked public calls --------------------------------------

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """Embed already-validated texts with a loaded model; shape (n, dimensions)."""

    @abstractmethod
    def _probe(self) -> float:
        """One real tiny forward pass with a loaded model; its wall time in milliseconds."""

    # --- public, checked calls ------------------------------------------------------

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``: float32 array of shape (len(texts), dimensions), rows L2-normalized."""
        batch = validate_texts(texts, max_texts=self.max_texts, max_chars=self.max_text_chars)
        self._require_loaded("embed")
        vectors = self._encode(batch)
        if vectors.ndim != 2 or vectors.shape != (len(batch), self.dimensions):
            # A wrong shape means the resident context is not the model we think it is.
            raise ContextUnavailableError(
                f"{self.name} returned shape {vectors.shape}, "
                f"expected ({len(batch)}, {self.dimensions})",
                model=self.name,
            )
        # Normalizing again costs microseconds and makes the contract hold for every plug-in.
        return l2_normalize(vectors)

    def probe(self) -> float:
        """Run one real tiny forward pass and return its milliseconds."""
        self._require_loaded("probe")
        ms = self._probe()
        if not math.isfinite(ms) or ms < 0:
            raise ContextUnavailableError(f"{self.name} probe returned {ms!r} ms", model=self.name)
        return ms

    def _require_loaded(self, action: str) -> None:
        if not self.loaded:
            raise ContextUnavailableError(
                f"cannot {action}: inference model {self.name!r} is not loaded on {self.device}",
                model=self.name,
                device=self.device,
            )

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"{kind}(name={self.name!r}, device={self.device!r}, loaded={self.loaded})"
