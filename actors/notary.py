"""Sandbox-runner actors: verification capacity that scales with the cluster.

Each ``SandboxRunnerActor`` is a thin shell over ``hcp.notary.pool.run_job`` with the sandbox
chosen by settings. ``RaySandboxPool`` implements ``hcp.notary.pool.SandboxPool`` over their
handles: bounded admission (503 when every runner is busy and the queue is full), least-busy
dispatch, and each task dataset put once into the object store.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

import ray

from actors.options import notary_runner_options
from hcp.config import Settings
from hcp.errors import PlatformStartError, SandboxBusyError
from hcp.logging_setup import configure_for
from hcp.notary.pool import SandboxJob, Slots, make_sandbox, run_job
from hcp.notary.sandbox.base import SandboxLimits, SandboxResult

log = logging.getLogger(__name__)


@ray.remote
class SandboxRunnerActor:
    def __init__(self, settings: Settings) -> None:
        configure_for(settings)
        self._sandbox = make_sandbox(settings)

    def run(self, wasm: bytes, hyperparameters: bytes | None, dataset: bytes,
            limits: SandboxLimits) -> SandboxResult:
        return run_job(self._sandbox, SandboxJob(wasm, hyperparameters, dataset, limits))

    def ping(self) -> bool:
        return True


def start_sandbox_pool(settings: Settings, size: int | None = None) -> list[Any]:
    """Start (or find, by name) the runner actors and wait until each answers.

    A runner reserves a whole CPU. On a cluster with fewer free CPUs than the pool asks for,
    a pool that waited for all of them would never start (and with it the platform), so the
    pool shrinks to what fits, down to one runner on whatever CPU share is left; the notary's
    admission queue absorbs the difference.
    """
    n, cpus = _pool_shape(size or settings.notary.sandbox_workers,
                          float(ray.available_resources().get("CPU", 0.0)))
    handles = [SandboxRunnerActor.options(**notary_runner_options(i, settings, cpus)).remote(settings)
               for i in range(n)]
    ready, pending = ray.wait([h.ping.remote() for h in handles], num_returns=n,
                              timeout=settings.ray.start_timeout_seconds)
    if pending:
        raise PlatformStartError(f"{len(pending)} of {n} notary sandbox runners did not start "
                                 f"within {settings.ray.start_timeout_seconds:g} s")
    ray.get(ready)
    return handles


def _pool_shape(wanted: int, free_cpus: float) -> tuple[int, float]:
    """How many runners, with what CPU each, fit in ``free_cpus``."""
    if free_cpus >= wanted:
        return wanted, 1.0
    if free_cpus >= 1:
        n = int(free_cpus)
        log.warning("notary: %d sandbox runners asked for, %.2f CPUs free: starting %d",
                    wanted, free_cpus, n)
        return n, 1.0
    share = round(max(free_cpus, 0.0), 4)
    log.warning("notary: %.2f CPUs free: one sandbox runner on a %.2f CPU share", free_cpus, share)
    return 1, share


class RaySandboxPool:
    def __init__(self, runners: list[Any], queue: int) -> None:
        if not runners:
            raise ValueError("a sandbox pool needs at least one runner")
        self._runners = list(runners)
        self._busy = [0] * len(self._runners)
        self._lock = threading.Lock()
        self._slots = Slots(len(self._runners) + queue)
        self._datasets: dict[str, Any] = {}

    def _dataset_ref(self, data: bytes) -> Any:
        key = hashlib.sha256(data).hexdigest()
        with self._lock:
            ref = self._datasets.get(key)
            if ref is None:
                if len(self._datasets) > 8:
                    self._datasets.clear()
                ref = self._datasets[key] = ray.put(data)
        return ref

    def run(self, job: SandboxJob) -> SandboxResult:
        self._slots.acquire()
        try:
            with self._lock:
                i = min(range(len(self._runners)), key=self._busy.__getitem__)
                self._busy[i] += 1
            try:
                ref = self._runners[i].run.remote(job.wasm, job.hyperparameters,
                                                  self._dataset_ref(job.dataset), job.limits)
                return ray.get(ref)
            except ray.exceptions.RayError as exc:
                log.warning("sandbox runner %d failed: %s", i, exc)
                raise SandboxBusyError("a sandbox runner failed; retry later") from exc
            finally:
                with self._lock:
                    self._busy[i] -= 1
        finally:
            self._slots.release()


class NamedSandboxPool:
    """The pool over the platform's runner actors, found by name on first use (they may start
    after the Serve replica that holds this), then a ``RaySandboxPool``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: RaySandboxPool | None = None
        self._lock = threading.Lock()

    def _get(self) -> RaySandboxPool:
        with self._lock:
            if self._pool is None:
                from actors.options import notary_runner_name

                runners = []
                for i in range(self._settings.notary.sandbox_workers):
                    try:
                        runners.append(ray.get_actor(notary_runner_name(i),
                                                     namespace=self._settings.ray.namespace))
                    except ValueError:
                        break
                if not runners:
                    raise SandboxBusyError("no notary sandbox runner is running")
                self._pool = RaySandboxPool(runners, self._settings.notary.sandbox_queue)
            return self._pool

    def run(self, job: SandboxJob) -> SandboxResult:
        return self._get().run(job)

    def __getattr__(self, name: str) -> Any:  # occupancy and the rest of the pool's face
        return getattr(self._get(), name)
