"""Hyperparameter search: seeded and repeatable, failed trials never win, real scores."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hcp.errors import ValidationError
from hcp.notary import reference_task as rt
from hcp.notary.miner.evaluate import LocalEvaluator
from hcp.notary.miner.search import search
from hcp.notary.reference_task import Range
from hcp.notary.sandbox.base import SandboxLimits, SandboxOutcome, SandboxResult
from hcp.notary.sandbox.wasm import WasmtimeSandbox

LIMITS = SandboxLimits(fuel=50_000_000_000, memory_bytes=256 << 20, timeout_seconds=60,
                       max_stdout_bytes=4096)
SMALL_SPACE = {"learning_rate": Range(0.01, 1.0, log=True), "epochs": Range(2, 10, integer=True),
               "seed": Range(0, 100, integer=True)}


@dataclass
class ScriptedSandbox:
    """Scores from the artifact's hyperparameters by a known formula; fails for some."""

    seen: list[dict] = field(default_factory=list)

    def run(self, workdir: Path, limits: SandboxLimits) -> SandboxResult:
        assert (workdir / "train.wasm").exists() and (workdir / "dataset.csv").exists()
        params = json.loads((workdir / "hyperparameters.json").read_text())
        self.seen.append(params)
        if params["epochs"] % 3 == 0:  # a crashing configuration scores nothing
            return SandboxResult(SandboxOutcome.TRAP, None, "", 0.0, 1, "exited with code 2")
        score = 1.0 - abs(params["learning_rate"] - 0.1) + params["epochs"] / 1000
        return SandboxResult(SandboxOutcome.OK, score, f"final score: {score}\n", 0.0, 1, "ok")


@pytest.mark.parametrize("engine", ["optuna", "random"])
def test_best_trial_is_the_maximum_of_successful_trials(engine: str) -> None:
    sb = ScriptedSandbox()
    ev = LocalEvaluator(sb, b"data", LIMITS)
    res = search(ev, b"\0asm", SMALL_SPACE, 15, seed=3, engine=engine)
    assert len(res.trials) == len(sb.seen) == 15
    ok = [t for t in res.trials if t.outcome is SandboxOutcome.OK]
    assert res.best_score == max(t.score for t in ok)
    assert res.best_params["epochs"] % 3 != 0
    for p in sb.seen:  # every sample lies inside the space
        assert 0.01 <= p["learning_rate"] <= 1.0 and 2 <= p["epochs"] <= 10
        assert isinstance(p["epochs"], int)


@pytest.mark.parametrize("engine", ["optuna", "random"])
def test_same_seed_same_search(engine: str) -> None:
    runs = [search(LocalEvaluator(ScriptedSandbox(), b"d", LIMITS), b"w", SMALL_SPACE, 8,
                   seed=11, engine=engine) for _ in range(2)]
    assert [t.params for t in runs[0].trials] == [t.params for t in runs[1].trials]
    other = search(LocalEvaluator(ScriptedSandbox(), b"d", LIMITS), b"w", SMALL_SPACE, 8,
                   seed=12, engine=engine)
    assert [t.params for t in other.trials] != [t.params for t in runs[0].trials]


def test_no_successful_trial_is_an_error_and_bounds_are_checked() -> None:
    only_bad = {"learning_rate": Range(0.01, 1.0, log=True), "epochs": Range(3, 3, integer=True)}
    ev = LocalEvaluator(ScriptedSandbox(), b"d", LIMITS)
    with pytest.raises(ValidationError, match="no trial produced a score"):
        search(ev, b"w", only_bad, 3, seed=0, engine="random")
    with pytest.raises(ValidationError, match="trials"):
        search(ev, b"w", SMALL_SPACE, 0, seed=0)
    with pytest.raises(ValidationError, match="unknown search engine"):
        search(ev, b"w", SMALL_SPACE, 1, seed=0, engine="grid")


def test_real_search_on_the_reference_task_reproduces_its_best_score() -> None:
    ev = LocalEvaluator(WasmtimeSandbox(), rt.dataset_bytes(), LIMITS)
    res = search(ev, rt.wasm_bytes(), SMALL_SPACE, 4, seed=0, engine="optuna")
    assert all(t.outcome is SandboxOutcome.OK for t in res.trials)
    assert 0.8 < res.best_score <= 1.0
    from hcp.notary.miner.claim import build_artifact

    again = ev.run_artifact(build_artifact(rt.wasm_bytes(), res.best_params))
    assert again.score == res.best_score
