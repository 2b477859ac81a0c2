"""Embeddings served by GPU actors in INFERENCE mode, one Ray hop from the ingress.

The ingress replica batches concurrent requests itself (natural batching: the first request
goes at once, requests that arrive meanwhile leave together) and calls ``GpuActor.embed``
through the typed handle wrapper, split at the model's per-call text limit. The GPU comes
from the router's ``acquire_inference_gpu``, which may switch a mining GPU; if the GPU
leaves INFERENCE (the optimizer switched it back) or stops answering, the next call acquires
one again. Input tokens are counted with the model's own tokenizer and billed per client
once per batch, before anyone is answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from actors.handles import FleetClient
from hcp.asyncbatch import NaturalBatcher
from hcp.config import Settings
from hcp.errors import ConfigError, ContextUnavailableError, DeviceUnavailableError
from hcp.inference.base import DEFAULT_MAX_TEXTS
from hcp.inference.usage import SqlUsageLedger
from serve_apps.backends import RouterWorkloads

log = logging.getLogger(__name__)


class TokenCounter:
    """Input tokens as the model sees them (special tokens included, truncated like the model)."""

    def __init__(self, model_name: str) -> None:
        from transformers import AutoTokenizer

        from hcp.inference.minilm import MODEL_NAME, bundled_model_path

        if model_name != MODEL_NAME:
            raise ConfigError(
                f"no tokenizer for {model_name!r}; the embeddings path serves {MODEL_NAME!r}",
                model=model_name,
            )
        self._tok = AutoTokenizer.from_pretrained(str(bundled_model_path()))
        self._max = 256  # all-MiniLM-L6-v2's max_seq_length: longer inputs are truncated

    def count(self, texts: list[str]) -> list[int]:
        enc = self._tok(texts, truncation=True, max_length=self._max)
        return [len(ids) for ids in enc["input_ids"]]


class GpuEmbedder:
    """The API's ``Embedder``: batches, a GPU actor, usage billed per batch."""

    def __init__(self, settings: Settings, router: RouterWorkloads, usage: SqlUsageLedger) -> None:
        self._settings = settings
        self._router = router
        self._usage = usage
        self._model = settings.fleet.inference_model
        self._tokens: TokenCounter | None = None  # loaded on first use (not in a constructor)
        self._fleet = FleetClient()
        self._device: str | None = None
        self._batcher: NaturalBatcher[tuple[str, list[str]], tuple[list[list[float]], int]] = (
            NaturalBatcher(self._batch, max_batch=settings.api.embed_batch_size))

    async def embed(self, owner: str, texts: list[str]) -> tuple[list[list[float]], int]:
        return await self._batcher.submit((owner, texts))

    async def _batch(self, requests: list[tuple[str, list[str]]]
                     ) -> list[tuple[list[list[float]], int] | BaseException]:
        flat = [t for _, texts in requests for t in texts]
        owner = requests[0][0]
        vectors: list[list[float]] = []
        for i in range(0, len(flat), DEFAULT_MAX_TEXTS):
            vectors.extend(await self._embed_chunk(owner, flat[i: i + DEFAULT_MAX_TEXTS]))
        if self._tokens is None:
            self._tokens = await asyncio.to_thread(TokenCounter, self._model)
        counts = self._tokens.count(flat)
        out: list[tuple[list[list[float]], int] | BaseException] = []
        per_owner: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        pos = 0
        for req_owner, texts in requests:
            n = len(texts)
            tokens = sum(counts[pos: pos + n])
            out.append((vectors[pos: pos + n], tokens))
            per_owner[req_owner][0] += 1
            per_owner[req_owner][1] += tokens
            pos += n
        # Billed before anyone gets an answer: if it cannot be recorded, the batch is refused
        # (503) rather than served unbilled.
        await asyncio.to_thread(
            self._usage.add_many, self._model, {w: (r, t) for w, (r, t) in per_owner.items()})
        return out

    async def _embed_chunk(self, owner: str, texts: list[str]) -> list[list[float]]:
        for attempt in (1, 2):
            device = await self._acquire(owner)
            try:
                return await self._fleet.aembed(device, texts)
            except (ContextUnavailableError, DeviceUnavailableError):
                # The GPU left INFERENCE or died: forget it and ask the router for another once.
                self._device = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _acquire(self, owner: str) -> str:
        if self._device is None:
            import ray

            from actors.options import gpu_actor_name

            device = await self._router.acquire_inference_gpu(owner)
            self._fleet.gpus[device] = ray.get_actor(
                gpu_actor_name(device), namespace=self._settings.ray.namespace)
            self._device = device
        return self._device
