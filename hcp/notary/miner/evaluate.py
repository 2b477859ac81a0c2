"""Scoring an artifact locally, in the same sandbox the notary uses, before claiming it."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hcp.notary.artifact import safe_extract
from hcp.notary.sandbox.base import DATASET_NAME, Sandbox, SandboxLimits, SandboxResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalEvaluator:
    """Runs artifacts like the notary does: safe extraction, ``dataset.csv`` beside them,
    the same ``Sandbox`` implementation and limits."""

    sandbox: Sandbox
    dataset: bytes
    limits: SandboxLimits
    max_files: int = 16
    max_total_bytes: int = 64 << 20

    def run_artifact(self, artifact: bytes) -> SandboxResult:
        workdir = Path(tempfile.mkdtemp(prefix="hcp-miner-"))
        try:
            safe_extract(artifact, workdir, self.max_files, self.max_total_bytes)
            (workdir / DATASET_NAME).write_bytes(self.dataset)
            return self.sandbox.run(workdir, self.limits)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
