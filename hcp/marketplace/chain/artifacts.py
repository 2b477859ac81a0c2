"""The compiled contracts (ABI + bytecode) committed under ``contracts/artifacts``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hcp.errors import ConfigError

ARTIFACTS_DIR = Path(__file__).resolve().parents[3] / "contracts" / "artifacts"
CONTRACT_NAMES = ("GPUToken", "ResourceRegistry", "ReputationSystem", "PaymentEscrow", "Marketplace")


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    source_hash: str


@cache
def load_artifact(name: str, directory: Path = ARTIFACTS_DIR) -> Artifact:
    path = directory / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"contract artifact {path} is missing; run `python -m contracts.build`") from None
    return Artifact(name=name, abi=raw["abi"], bytecode=raw["bytecode"],
                    deployed_bytecode=raw["deployedBytecode"], source_hash=raw["sourceHash"])
