"""What every sandbox promises: run a workdir's ``train.wasm`` under limits, report the score.

The workdir holds ``train.wasm``, optionally ``hyperparameters.json``, and the task's dataset
as ``dataset.csv``. The guest sees only that directory, preopened as ``/work`` (and as ``.``
so relative paths work), read-only; no network; stdout is captured up to a bound and must
contain a line ``final score: <float>`` (the last such line counts).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

GUEST_DIR = "/work"
WASM_NAME = "train.wasm"
HYPERPARAMETERS_NAME = "hyperparameters.json"
DATASET_NAME = "dataset.csv"

SCORE_PATTERN = re.compile(r"^final score:\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$",
                           re.MULTILINE)


class SandboxOutcome(str, Enum):
    OK = "ok"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    FUEL_EXHAUSTED = "fuel_exhausted"
    TRAP = "trap"
    INVALID_WASM = "invalid_wasm"
    NO_SCORE = "no_score"


@dataclass(frozen=True)
class SandboxLimits:
    fuel: int  # wasm instructions (wasmtime fuel units)
    memory_bytes: int  # linear memory cap
    timeout_seconds: float  # wall clock
    max_stdout_bytes: int  # stdout kept; more is dropped and reported in ``detail``


@dataclass(frozen=True)
class SandboxResult:
    outcome: SandboxOutcome
    score: float | None
    stdout: str
    duration_seconds: float
    fuel_consumed: int | None
    detail: str


class Sandbox(Protocol):
    def run(self, workdir: Path, limits: SandboxLimits) -> SandboxResult: ...


def parse_score(stdout: str) -> float | None:
    """The last ``final score: <float>`` line of ``stdout``; None when absent or not finite."""
    matches = SCORE_PATTERN.findall(stdout)
    if not matches:
        return None
    value = float(matches[-1])
    return value if math.isfinite(value) else None
