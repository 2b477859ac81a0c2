"""Hyperparameter search for the reference task: Optuna's seeded TPE, bounded trials.

Every trial builds a real artifact and scores it in the local sandbox, so the best trial's
score is exactly what the notary will reproduce. With a fixed seed the search is repeatable.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hcp.errors import ConfigError, ValidationError
from hcp.notary.miner.claim import build_artifact
from hcp.notary.miner.evaluate import LocalEvaluator
from hcp.notary.reference_task import Range
from hcp.notary.sandbox.base import SandboxOutcome

log = logging.getLogger(__name__)

MAX_TRIALS = 500


@dataclass(frozen=True)
class Trial:
    number: int
    params: dict[str, Any]
    outcome: SandboxOutcome
    score: float | None
    seconds: float


@dataclass(frozen=True)
class SearchResult:
    best_params: dict[str, Any]
    best_score: float
    trials: list[Trial] = field(default_factory=list)
    engine: str = "optuna-tpe"


def _suggest_optuna(trial: Any, space: Mapping[str, Range]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, r in space.items():
        if r.integer:
            params[name] = trial.suggest_int(name, int(r.low), int(r.high), log=r.log)
        else:
            params[name] = trial.suggest_float(name, r.low, r.high, log=r.log)
    return params


def _suggest_random(rng: random.Random, space: Mapping[str, Range]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, r in space.items():
        u = rng.random()
        if r.log:
            v = math.exp(math.log(r.low) + u * (math.log(r.high) - math.log(r.low)))
        else:
            v = r.low + u * (r.high - r.low)
        params[name] = min(int(r.high), max(int(r.low), round(v))) if r.integer else v
    return params


def search(evaluator: LocalEvaluator, wasm: bytes, space: Mapping[str, Range], n_trials: int,
           seed: int, engine: str = "optuna",
           on_trial: Callable[[Trial], None] | None = None) -> SearchResult:
    """Search ``space`` for the hyperparameters that score best; ``engine`` is ``optuna``
    (seeded TPE) or ``random`` (seeded uniform/log-uniform sampling, no extra dependency)."""
    if not 1 <= n_trials <= MAX_TRIALS:
        raise ValidationError(f"trials must be in [1, {MAX_TRIALS}]", trials=n_trials)
    trials: list[Trial] = []

    def evaluate(number: int, params: dict[str, Any]) -> float:
        res = evaluator.run_artifact(build_artifact(wasm, params))
        t = Trial(number, params, res.outcome, res.score, res.duration_seconds)
        trials.append(t)
        if on_trial:
            on_trial(t)
        log.debug("trial %d %s -> %s %s", number, params, res.outcome.value, res.score)
        # A run that fails or prints no score is the worst possible trial, never an error.
        return res.score if res.outcome is SandboxOutcome.OK and res.score is not None else -1.0

    if engine == "optuna":
        try:
            import optuna  # optional: only the miner's search needs it
        except ImportError as exc:
            raise ConfigError("optuna is not installed; pip install optuna, or use the "
                              "'random' engine") from exc

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(lambda tr: evaluate(tr.number, _suggest_optuna(tr, space)),
                       n_trials=n_trials)
        label = "optuna-tpe"
    elif engine == "random":
        rng = random.Random(seed)
        for i in range(n_trials):
            evaluate(i, _suggest_random(rng, space))
        label = "random"
    else:
        raise ValidationError(f"unknown search engine {engine!r} (optuna or random)")
    scored = [t for t in trials if t.outcome is SandboxOutcome.OK and t.score is not None]
    if not scored:
        raise ValidationError("no trial produced a score; check the module and dataset",
                              outcomes=sorted({t.outcome.value for t in trials}))
    # First of the best: ties go to the earliest trial, so the choice is repeatable.
    best = max(scored, key=lambda t: (t.score, -t.number))
    return SearchResult(dict(best.params), float(best.score), trials, label)
