"""The reference ML-Chain task: logistic regression on Breast Cancer Wisconsin, as ``train.wasm``.

``train.c`` is the source and ``build.sh`` its reproducible build (clang's wasm32-wasi target with
Debian's wasi-libc); ``train.wasm`` is committed so nothing needs a toolchain at run time.
``breast_cancer.csv`` is scikit-learn's copy of the UCI data set (569 samples, 30 features);
the task's ``dataset_hash`` is the SHA-256 of that file's bytes (also in ``*.sha256``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcp.errors import ConfigError

TASK_DIR = Path(__file__).resolve().parent
WASM_PATH = TASK_DIR / "train.wasm"
SOURCE_PATH = TASK_DIR / "train.c"
BUILD_SCRIPT = TASK_DIR / "build.sh"
DATASET_PATH = TASK_DIR / "breast_cancer.csv"
DATASET_SHA256 = "fed3eb72d0575ef6192293f5093c6e801b1476b577d0386bf4455504522172ed"
DATASET_HASH = f"sha256:{DATASET_SHA256}"
METRIC = "test_accuracy"

# What train.c uses when hyperparameters.json is absent or leaves a key out.
DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    "learning_rate": 0.1, "epochs": 50, "l2": 0.001, "batch_size": 16, "seed": 42, "lr_decay": 0.0,
}


@dataclass(frozen=True)
class Range:
    """One searchable hyperparameter: bounds train.c accepts, and how to sample it."""

    low: float
    high: float
    integer: bool = False
    log: bool = False


# A search space inside train.c's accepted bounds, small enough that a trial stays cheap
# (epochs × batches bound the fuel a run needs).
SEARCH_SPACE: dict[str, Range] = {
    "learning_rate": Range(0.005, 2.0, log=True),
    "epochs": Range(5, 120, integer=True),
    "l2": Range(1e-6, 0.1, log=True),
    "batch_size": Range(4, 128, integer=True, log=True),
    "lr_decay": Range(0.0, 0.5),
    "seed": Range(0, 10_000, integer=True),
}


def sha256_hash(data: bytes) -> str:
    """The ``sha256:<hex>`` form ML-Chain uses for datasets and artifacts."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def wasm_bytes() -> bytes:
    return WASM_PATH.read_bytes()


def dataset_bytes() -> bytes:
    data = DATASET_PATH.read_bytes()
    if sha256_hash(data) != DATASET_HASH:  # a corrupted checkout must not train silently
        raise ConfigError(f"{DATASET_PATH} does not match {DATASET_HASH}")
    return data


def hyperparameters_json(params: dict[str, Any]) -> bytes:
    """The bytes of ``hyperparameters.json`` for ``params``: stable, so artifacts are too."""
    return json.dumps(params, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n"
