"""Sandbox pools: where sandbox runs happen, with a bounded queue (503 when it is full).

``LocalSandboxPool`` runs jobs on threads in this process (unit tests, the CLI, a one-box
notary); ``actors.notary.RaySandboxPool`` runs them on a pool of Ray actors so verification
scales with the cluster. A job carries bytes, not paths, so it can cross machines; each
runner writes its own private, read-only workdir and removes it afterwards.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from hcp.errors import ConfigError, SandboxBusyError
from hcp.notary.sandbox.base import (
    DATASET_NAME,
    HYPERPARAMETERS_NAME,
    WASM_NAME,
    Sandbox,
    SandboxLimits,
    SandboxResult,
)

if TYPE_CHECKING:
    from hcp.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SandboxJob:
    wasm: bytes
    hyperparameters: bytes | None
    dataset: bytes
    limits: SandboxLimits


class SandboxPool(Protocol):
    def run(self, job: SandboxJob) -> SandboxResult:
        """Run ``job``; raises ``SandboxBusyError`` at once when no slot is free."""
        ...


def run_job(sandbox: Sandbox, job: SandboxJob, tmp_root: str | None = None) -> SandboxResult:
    """Materialize a private read-only workdir for ``job``, run it, remove the workdir."""
    workdir = Path(tempfile.mkdtemp(prefix="hcp-sbx-", dir=tmp_root))
    try:
        (workdir / WASM_NAME).write_bytes(job.wasm)
        if job.hyperparameters is not None:
            (workdir / HYPERPARAMETERS_NAME).write_bytes(job.hyperparameters)
        (workdir / DATASET_NAME).write_bytes(job.dataset)
        for f in workdir.iterdir():
            f.chmod(0o444)
        return sandbox.run(workdir, job.limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def make_sandbox(settings: Settings) -> Sandbox:
    mode = settings.notary.sandbox_mode
    if mode == "wasm":
        from hcp.notary.sandbox.wasm import WasmtimeSandbox

        return WasmtimeSandbox()
    if mode == "docker":
        from hcp.notary.sandbox.docker import DockerSandbox  # type: ignore[import-not-found]

        factory = getattr(DockerSandbox, "from_settings", None)
        return factory(settings) if factory else DockerSandbox()
    raise ConfigError(f"unknown HCP_NOTARY_SANDBOX_MODE {mode!r} (wasm or docker)")


class Slots:
    """Admission control: ``workers`` running plus ``queue`` waiting, no more."""

    def __init__(self, capacity: int) -> None:
        self._sem = threading.BoundedSemaphore(capacity)
        self._lock = threading.Lock()
        self.capacity = capacity
        self.in_use = 0  # jobs running or waiting now (occupancy, for metrics and tests)

    def acquire(self) -> None:
        if not self._sem.acquire(blocking=False):
            raise SandboxBusyError("all sandboxes are busy and the queue is full; retry later",
                                   capacity=self.capacity)
        with self._lock:
            self.in_use += 1

    def release(self) -> None:
        with self._lock:
            self.in_use -= 1
        self._sem.release()


class LocalSandboxPool:
    def __init__(self, sandbox: Sandbox, workers: int, queue: int) -> None:
        self.sandbox = sandbox
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox")
        self._slots = Slots(workers + queue)

    @classmethod
    def from_settings(cls, settings: Settings, sandbox: Sandbox | None = None) -> LocalSandboxPool:
        return cls(sandbox or make_sandbox(settings), settings.notary.sandbox_workers,
                   settings.notary.sandbox_queue)

    def run(self, job: SandboxJob) -> SandboxResult:
        self._slots.acquire()
        try:
            return self._executor.submit(run_job, self.sandbox, job).result()
        finally:
            self._slots.release()

    @property
    def in_use(self) -> int:
        """Jobs running or waiting for a sandbox now."""
        return self._slots.in_use

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
