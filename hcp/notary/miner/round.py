"""One mining round: fetch the task, search, build, score locally, sign, submit, report."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hcp.errors import ValidationError
from hcp.notary import reference_task
from hcp.notary.miner.claim import build_artifact, build_payload, sign_claim
from hcp.notary.miner.client import NotaryClient, SubmitOutcome, Task
from hcp.notary.miner.evaluate import LocalEvaluator
from hcp.notary.miner.keys import MinerKey
from hcp.notary.miner.search import SearchResult, Trial, search
from hcp.notary.sandbox.base import Sandbox, SandboxLimits, SandboxOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundConfig:
    trials: int = 20
    seed: int = 0
    engine: str = "optuna"
    fuel: int = 200_000_000_000
    memory_bytes: int = 1 << 30
    max_stdout_bytes: int = 64 << 10
    wasm_path: Path | None = None  # None: the reference task's train.wasm
    dataset_path: Path | None = None  # None: the bundled reference data, else download
    submit_below_threshold: bool = False


@dataclass
class RoundReport:
    task: dict[str, Any]
    miner_id: str
    search: dict[str, Any] = field(default_factory=dict)
    local_score: float | None = None
    artifact_hash: str | None = None
    nonce: str | None = None
    submitted: bool = False
    status_code: int | None = None
    response: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    seconds: float = 0.0

    @property
    def verified(self) -> bool:
        return self.status_code == 202 and self.response.get("status") == "verified"

    def to_dict(self) -> dict[str, Any]:
        return {"verified": self.verified, "task": self.task, "miner_id": self.miner_id,
                "search": self.search, "local_score": self.local_score,
                "artifact_hash": self.artifact_hash, "nonce": self.nonce,
                "submitted": self.submitted, "status_code": self.status_code,
                "response": self.response, "attempts": self.attempts,
                "seconds": round(self.seconds, 3)}


def task_dataset(client: NotaryClient, task: Task, dataset_path: Path | None) -> bytes:
    """The task's dataset: a local file, the bundled reference copy, or the notary's."""
    if dataset_path is not None:
        try:
            data = Path(dataset_path).read_bytes()
        except OSError as exc:
            raise ValidationError(f"cannot read the dataset {dataset_path}: {exc}") from exc
        if reference_task.sha256_hash(data) != task.dataset_hash:
            raise ValidationError(f"{dataset_path} does not match the task's dataset_hash "
                                  f"{task.dataset_hash}")
        return data
    if task.dataset_hash == reference_task.DATASET_HASH:
        return reference_task.dataset_bytes()
    return client.get_dataset(task.dataset_hash)


def run_round(client: NotaryClient, key: MinerKey, sandbox: Sandbox, cfg: RoundConfig,
              on_trial: Callable[[Trial], None] | None = None,
              on_stage: Callable[[str], None] | None = None) -> RoundReport:
    started = time.monotonic()
    stage = on_stage or (lambda _s: None)
    stage("fetching the task")
    task = client.get_task()
    report = RoundReport(task=task.raw, miner_id=key.miner_id)
    dataset = task_dataset(client, task, cfg.dataset_path)
    wasm_path = cfg.wasm_path or reference_task.WASM_PATH
    try:
        wasm = wasm_path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read the module {wasm_path}: {exc}") from exc
    limits = SandboxLimits(fuel=cfg.fuel, memory_bytes=cfg.memory_bytes,
                           timeout_seconds=task.max_training_time_seconds,
                           max_stdout_bytes=cfg.max_stdout_bytes)
    evaluator = LocalEvaluator(sandbox, dataset, limits)

    stage(f"searching hyperparameters ({cfg.trials} trials, {cfg.engine})")
    found: SearchResult = search(evaluator, wasm, reference_task.SEARCH_SPACE, cfg.trials,
                                 cfg.seed, cfg.engine, on_trial)
    report.search = {"engine": found.engine, "trials": len(found.trials),
                     "best_params": found.best_params, "best_score": found.best_score}

    stage("building and scoring the artifact")
    artifact = build_artifact(wasm, found.best_params)
    local = evaluator.run_artifact(artifact)
    if local.outcome is not SandboxOutcome.OK or local.score is None:
        raise ValidationError(f"the chosen artifact did not score locally: {local.outcome.value} "
                              f"({local.detail})")
    report.local_score = local.score
    if local.score < task.performance_threshold and not cfg.submit_below_threshold:
        report.response = {"error": "below_threshold",
                           "detail": f"local score {local.score} < threshold "
                                     f"{task.performance_threshold}; not submitted"}
        report.seconds = time.monotonic() - started
        return report

    stage("signing and submitting the claim")
    payload = build_payload(key.miner_id, task.task_id, local.score, artifact)
    claim = sign_claim(key, payload, artifact)
    report.artifact_hash, report.nonce = payload["artifact_hash"], claim.nonce
    outcome: SubmitOutcome = client.submit(claim)
    report.submitted = True
    report.status_code, report.response, report.attempts = (outcome.status_code, outcome.body,
                                                            outcome.attempts)
    report.seconds = time.monotonic() - started
    return report
