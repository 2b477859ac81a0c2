"""In-memory ports for the agent's unit tests: a Docker Engine whose containers a test drives,
an image store whose pulls a test scripts, a hand-driven clock, an executor that runs inline."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hcp.agent.messages import (
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    EngineCaps,
    PulledImage,
    RawLine,
    StatsReading,
)
from hcp.agent.spec import LABEL_AGENT
from hcp.errors import ContainerEngineError, HcpError


class ManualClock:
    def __init__(self) -> None:
        self.t = datetime(2026, 12, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self.t

    def monotonic(self) -> float:
        return self.now().timestamp()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += timedelta(seconds=seconds)


class InlineExecutor(Executor):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - a Future carries any failure
            fut.set_exception(exc)
        return fut


@dataclass
class FakeContainer:
    id: str
    spec: ContainerSpec
    status: ContainerStatus = ContainerStatus.CREATED
    exit_code: int | None = None
    oom: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    logs: list[RawLine] = field(default_factory=list)
    cpu_ns: int = 0


class FakeContainers:
    """Containers a test drives: ``emit`` log lines, ``exit`` them; ``down`` makes every call
    fail as an unreachable Engine would."""

    def __init__(self, clock: ManualClock, caps: EngineCaps | None = None) -> None:
        self.clock = clock
        self.caps = caps or EngineCaps(nvidia=False, disk_quota=False, cpus=8)
        self.containers: dict[str, FakeContainer] = {}
        self.removed: list[str] = []
        self.starts = 0
        self.down = False
        self.exit_on_start: int | None = None  # a container that dies as it starts
        self._cond = threading.Condition()
        self._n = 0
        self._tick = 0

    def _check(self) -> None:
        if self.down:
            raise ContainerEngineError("the fake Engine is down")

    def capabilities(self) -> EngineCaps:
        self._check()
        return self.caps

    def create(self, spec: ContainerSpec) -> str:
        self._check()
        with self._cond:
            for c in self.containers.values():
                if c.spec.name == spec.name:
                    return c.id
            self._n += 1
            cid = f"c{self._n:04d}" + "0" * 60
            self.containers[cid] = FakeContainer(cid, spec)
            return cid

    def start(self, container_id: str) -> None:
        self._check()
        with self._cond:
            c = self.containers[container_id]
            c.status, c.started_at = ContainerStatus.RUNNING, self.clock.now()
            self.starts += 1
        if self.exit_on_start is not None:
            self.exit(container_id, self.exit_on_start)

    def inspect(self, container_id: str) -> ContainerState:
        self._check()
        with self._cond:
            c = self.containers.get(container_id)
            if c is None:
                return ContainerState(container_id, ContainerStatus.MISSING)
            return ContainerState(c.id, c.status, dict(c.spec.labels), c.exit_code, c.oom,
                                  c.started_at, c.finished_at)

    def stop(self, container_id: str, grace_seconds: float) -> None:
        self._check()
        c = self.containers.get(container_id)
        if c is not None and c.status is ContainerStatus.RUNNING:
            self.exit(container_id, 143)

    def remove(self, container_id: str) -> None:
        self._check()
        with self._cond:
            if self.containers.pop(container_id, None) is not None:
                self.removed.append(container_id)
            self._cond.notify_all()

    def list_managed(self, agent_id: str) -> list[ContainerState]:
        self._check()
        return [self.inspect(c.id) for c in list(self.containers.values())
                if c.spec.labels.get(LABEL_AGENT) == agent_id]

    def follow_logs(self, container_id: str, since_s: int) -> Iterator[RawLine]:
        self._check()
        i = 0
        while True:
            with self._cond:
                c = self.containers.get(container_id)
                if c is None:
                    return
                while i >= len(c.logs) and c.status is ContainerStatus.RUNNING and not self.down:
                    self._cond.wait(0.05)
                if self.down:
                    raise ContainerEngineError("the fake Engine dropped the stream")
                batch = c.logs[i:]
                i = len(c.logs)
                ended = c.status is not ContainerStatus.RUNNING and not batch
            for line in batch:
                if line.ts_ns >= since_s * 1_000_000_000:
                    yield line
            if ended:
                return

    def stats(self, container_id: str) -> StatsReading | None:
        self._check()
        c = self.containers.get(container_id)
        if c is None or c.status is not ContainerStatus.RUNNING:
            return None
        c.cpu_ns += 500_000_000
        self._tick += 1
        return StatsReading(self.clock.now(), c.cpu_ns, self._tick * 1_000_000_000 * 8, 8,
                            32 << 20, c.spec.mem_bytes, 3)

    # -- test controls ------------------------------------------------------------------
    def emit(self, container_id: str, text: str, stream: str = "stdout",
             ts_ns: int | None = None) -> None:
        with self._cond:
            c = self.containers[container_id]
            if ts_ns is None:
                self._tick += 1
                ts_ns = int(self.clock.now().timestamp()) * 1_000_000_000 + self._tick
            c.logs.append(RawLine(stream, ts_ns, text))
            self._cond.notify_all()

    def exit(self, container_id: str, code: int, oom: bool = False) -> None:
        with self._cond:
            c = self.containers[container_id]
            c.status, c.exit_code, c.oom, c.finished_at = ContainerStatus.EXITED, code, oom, self.clock.now()
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def by_job(self, job_id: str) -> FakeContainer:
        return next(c for c in self.containers.values() if c.spec.labels.get("hcp.job_id") == job_id)


class FakeImages:
    def __init__(self) -> None:
        self.failure: HcpError | None = None
        self.held: set[str] = set()
        self.pulls = 0

    def ensure(self, cid: str, job_id: str) -> PulledImage:
        self.pulls += 1
        if self.failure is not None:
            raise self.failure
        self.held.add(job_id)
        return PulledImage(cid, "sha256:" + "ab" * 32, cached=self.pulls > 1, volumes=("/data",))

    def release(self, job_id: str) -> None:
        self.held.discard(job_id)
