"""The inference deployment: batches embedding requests onto GPU actors in INFERENCE mode.

Concurrent requests are grouped by ``@serve.batch`` into one ``GpuActor.embed`` call per
batch (split at the model's per-call text limit). The GPU comes from the router's
``acquire_inference_gpu``, which may switch a mining GPU; if the GPU leaves INFERENCE
(the optimizer switched it back), the next call acquires one again. Input tokens are
counted with the model's own tokenizer and recorded per client once per batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

import ray
from ray import serve

from actors.options import gpu_actor_name
from hcp.api.usage import SqlUsageLedger
from hcp.config import Settings
from hcp.errors import ConfigError, ContextUnavailableError, ServiceUnavailableError
from hcp.inference.base import DEFAULT_MAX_TEXTS
from hcp.logging_setup import configure_logging
from hcp.store import engine_for
from hcp.workloads.repository import WorkloadRepository
from serve_apps.backends import RouterWorkloads, call_actor

log = logging.getLogger(__name__)


class TokenCounter:
    """Input tokens as the model sees them (special tokens included, truncated like the model)."""

    def __init__(self, model_name: str) -> None:
        from transformers import AutoTokenizer

        from hcp.inference.minilm import MODEL_NAME, bundled_model_path

        if model_name != MODEL_NAME:
            raise ConfigError(
                f"no tokenizer for {model_name!r}; the embeddings deployment serves {MODEL_NAME!r}",
                model=model_name,
            )
        self._tok = AutoTokenizer.from_pretrained(str(bundled_model_path()))
        self._max = 256  # all-MiniLM-L6-v2's max_seq_length: longer inputs are truncated

    def count(self, texts: list[str]) -> list[int]:
        enc = self._tok(texts, truncation=True, max_length=self._max)
        return [len(ids) for ids in enc["input_ids"]]


@serve.deployment(name="embeddings", max_ongoing_requests=256, ray_actor_options={"num_cpus": 0})
class EmbeddingsDeployment:
    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = Settings(**settings)
        configure_logging(self._settings.log_level)
        engine = engine_for(self._settings.resolved_database_url)
        self._router = RouterWorkloads(self._settings, WorkloadRepository(engine))
        self._usage = SqlUsageLedger(engine)
        self._tokens = TokenCounter(self._settings.fleet.inference_model)
        self._model = self._settings.fleet.inference_model
        self._gpu: Any = None
        self._device: str | None = None
        self._batch.set_max_batch_size(self._settings.api.embed_batch_size)
        self._batch.set_batch_wait_timeout_s(self._settings.api.embed_batch_wait_s)

    async def embed(self, owner: str, texts: list[str]) -> tuple[list[list[float]], int]:
        return await self._batch((owner, texts))

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def _batch(
        self, requests: list[tuple[str, list[str]]]
    ) -> list[tuple[list[list[float]], int]]:
        flat = [t for _, texts in requests for t in texts]
        owner = requests[0][0]
        vectors: list[list[float]] = []
        for i in range(0, len(flat), DEFAULT_MAX_TEXTS):
            vectors.extend(await self._embed_chunk(owner, flat[i : i + DEFAULT_MAX_TEXTS]))
        counts = self._tokens.count(flat)
        out, per_owner = [], defaultdict(lambda: [0, 0])
        pos = 0
        for req_owner, texts in requests:
            n = len(texts)
            tokens = sum(counts[pos : pos + n])
            out.append((vectors[pos : pos + n], tokens))
            per_owner[req_owner][0] += 1
            per_owner[req_owner][1] += tokens
            pos += n
        # Usage is billed before anyone gets an answer: if it cannot be recorded, the batch is
        # refused (503) rather than served unbilled.
        await asyncio.to_thread(
            self._usage.add_many, self._model, {w: (r, t) for w, (r, t) in per_owner.items()}
        )
        return out

    async def _embed_chunk(self, owner: str, texts: list[str]) -> list[list[float]]:
        for attempt in (1, 2):
            gpu = await self._acquire(owner)
            try:
                return await call_actor(
                    lambda g=gpu: g.embed.remote(texts),
                    ServiceUnavailableError,
                    f"GPU {self._device}",
                )
            except (ContextUnavailableError, ServiceUnavailableError):
                # The GPU left INFERENCE or died: forget it and ask the router for another once.
                self._gpu = self._device = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _acquire(self, owner: str) -> Any:
        if self._gpu is None:
            device = await self._router.acquire_inference_gpu(owner)
            self._gpu = ray.get_actor(
                gpu_actor_name(device), namespace=self._settings.ray.namespace
            )
            self._device = device
        return self._gpu


class ServeEmbedder:
    """The ingress side: awaits the inference deployment through its handle."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def embed(self, owner: str, texts: list[str]) -> tuple[list[list[float]], int]:
        vectors, tokens = await call_actor(
            lambda: self._handle.embed.remote(owner, texts),
            ServiceUnavailableError,
            "the inference deployment",
        )
        return vectors, tokens
