"""Batch work on Ray (``ray job submit``): the cluster a batch command runs on, and the
embedding job spread across Ray tasks.

Inside a Ray job the job supervisor sets ``RAY_ADDRESS`` and the token variables: the command
joins that cluster. From a shell where ``hcp cluster start``'s exports are set, it joins that
head. Otherwise it joins ``HCP_RAY_ADDRESS`` when set, else it starts a local Ray for the
length of the command (``actors.topology.start_cluster``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import ray
from ray.job_submission import JobSubmissionClient

from actors.options import embed_task_options
from actors.topology import keep_loopback, start_cluster, use_token
from hcp.batch.embeddings import TextRow, Written, chunks, embed_all, read_texts, write_parquet
from hcp.batch.head import HeadRecord
from hcp.config import Settings
from hcp.errors import NoClusterError, ValidationError
from hcp.inference.base import InferenceModel
from hcp.inference.registry import create_model

log = logging.getLogger(__name__)

# One resident model per worker process: tasks of one job reuse it instead of reloading.
_MODELS: dict[str, InferenceModel] = {}


@contextmanager
def batch_cluster(settings: Settings) -> Iterator[None]:
    """Ray for one batch command: the job's cluster, ``HCP_RAY_ADDRESS``, or a local one."""
    if ray.is_initialized():
        yield
        return
    address = "" if settings.ray.address else os.environ.get("RAY_ADDRESS", "")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address.startswith(("http://", "https://")):
        # The job API's address (what `hcp cluster start` exports for `ray job submit`): run
        # on that head from this shell, through its GCS address and token.
        rec = HeadRecord.load(settings.home)
        if rec is None or rec.dashboard_url != address.rstrip("/"):
            raise NoClusterError("RAY_ADDRESS names a job API, not this HCP_HOME's head: "
                                 "submit with `ray job submit`, or unset RAY_ADDRESS")
        keep_loopback()  # else Ray dials the machine's own address, where nothing listens
        use_token(rec.token_path)
        ray.init(address=rec.gcs_address, log_to_driver=False, logging_level=logging.WARNING)
    elif address:
        ray.init(log_to_driver=False, logging_level=logging.WARNING)  # inside a Ray job
    else:
        start_cluster(settings, log_to_driver=False, record=False)
    try:
        yield
    finally:
        ray.shutdown()


def job_client(home: Path) -> JobSubmissionClient:
    """Ray's job SDK for the head ``hcp cluster start`` started for ``home``.

    The token travels as this client's own header, so a process that is also connected to
    another cluster (with its own token) keeps that connection as it was."""
    rec = HeadRecord.load(home)
    if rec is None:
        raise NoClusterError("no Ray head was started for this HCP_HOME (hcp cluster start)")
    return JobSubmissionClient(rec.dashboard_url, headers=rec.auth_headers())


def _model(name: str) -> InferenceModel:
    model = _MODELS.get(name)
    if model is None:
        model = create_model(name)
        model.load()
        _MODELS[name] = model
    return model


@ray.remote
def _embed_chunk(model_name: str, texts: list[str]) -> np.ndarray:
    return _model(model_name).embed(texts)


def embed_file(settings: Settings, input_path: Path, output: Path, model_name: str,
               batch_size: int = 64, in_flight: int | None = None, use_ray: bool = True) -> Written:
    """Embed every good row of ``input_path`` into ``output`` (Parquet); bad rows go to the
    rejects file. With ``use_ray`` the batches run as Ray tasks (at most ``in_flight`` at once,
    default: the cluster's CPUs); without, in this process."""
    loaded = read_texts(input_path)
    if not loaded.rows:
        raise ValidationError("no row of the input can be embedded", rejected=len(loaded.rejects))
    parts = chunks(loaded.rows, batch_size)
    if use_ray:
        with batch_cluster(settings):
            vectors = _on_ray(model_name, parts, in_flight)
    else:
        vectors = embed_all(loaded.rows, _model(model_name).embed, batch_size)
    return write_parquet(output, loaded.rows, vectors, model_name, loaded.rejects)


def _on_ray(model_name: str, parts: list[list[TextRow]], in_flight: int | None) -> np.ndarray:
    limit = in_flight or max(1, int(ray.cluster_resources().get("CPU", 1)))
    task = _embed_chunk.options(**embed_task_options())
    results: dict[int, np.ndarray] = {}
    pending: dict[ray.ObjectRef, int] = {}
    for i, part in enumerate(parts):
        if len(pending) >= limit:
            _collect(pending, results)
        pending[task.remote(model_name, [r.text for r in part])] = i
    while pending:
        _collect(pending, results)
    log.info("embedded %d batches on Ray", len(parts))
    return np.concatenate([results[i] for i in range(len(parts))])


def _collect(pending: dict[ray.ObjectRef, int], results: dict[int, np.ndarray]) -> None:
    done, _ = ray.wait(list(pending), num_returns=1)
    for ref in done:
        results[pending.pop(ref)] = ray.get(ref)
