"""Log capture: a container's stdout/stderr into the run store, numbered per job, resumable.

The Engine's log of a container is a fixed sequence of messages, and the store holds a prefix
of it. After a restart (of the agent or of the Engine's stream) capture re-reads the log from
a second ``since_s`` a little before the newest stored line, skips the ``skip`` messages
stored from that second on (the same filter on both sides: timestamp >= since), and numbers
the rest from ``next_seq``. So no line is lost or stored twice, and the cursor a reader holds
(the seq) stays valid.

A reader thread follows the Engine; a writer thread stores what it read in batches (all that
is waiting, up to ``log_batch_lines``), so an idle log is written at once and a busy one in
large batches. A failed write is retried with the same seqs (appends are idempotent).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from hcp.agent.messages import LogLine, RawLine
from hcp.agent.ports import ContainerPort, RunStore
from hcp.agent.settings import AgentSettings
from hcp.errors import HcpError

log = logging.getLogger(__name__)

_END = object()


class LogCapture:
    def __init__(self, job_id: str, container_id: str, containers: ContainerPort, runs: RunStore,
                 settings: AgentSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.job_id = job_id
        self.container_id = container_id
        self._containers = containers
        self._runs = runs
        self._settings = settings
        self._sleep = sleep
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1000, settings.log_batch_lines * 4))
        self._done = threading.Event()
        self._stop = threading.Event()
        self.error: str | None = None  # why the Engine's stream ended early, if it did
        self.stored = 0
        self._threads: list[threading.Thread] = []

    def start(self) -> LogCapture:
        point = self._runs.log_resume(self.job_id, self._settings.resume_margin_seconds)
        reader = threading.Thread(target=self._read, args=(point.since_s, point.skip),
                                  name=f"hcp-logs-{self.job_id[:8]}", daemon=True)
        writer = threading.Thread(target=self._write, args=(point.next_seq,),
                                  name=f"hcp-logw-{self.job_id[:8]}", daemon=True)
        self._threads = [reader, writer]
        writer.start()
        reader.start()
        return self

    @property
    def done(self) -> bool:
        """The stream ended (container exit or a lost stream) and everything read is stored."""
        return self._done.is_set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def close(self) -> None:
        """Stop writing (the agent is shutting down; a later capture resumes from the store)."""
        self._stop.set()

    def _read(self, since_s: int, skip: int) -> None:
        try:
            for line in self._containers.follow_logs(self.container_id, since_s):
                if self._stop.is_set():
                    break
                if skip > 0:
                    skip -= 1
                    continue
                self._queue.put(line)
        except HcpError as exc:
            self.error = exc.detail
            log.info("log stream of job %s ended early: %s", self.job_id, exc.detail)
        except Exception as exc:  # a broken stream must still let the writer finish
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("log stream of job %s failed", self.job_id)
        finally:
            self._queue.put(_END)

    def _write(self, next_seq: int) -> None:
        batch_max = self._settings.log_batch_lines
        flush_s = self._settings.log_flush_seconds
        ended = False
        while not ended:
            first = self._queue.get()
            pending = [] if first is _END else [first]
            ended = first is _END
            if flush_s and not ended:
                time.sleep(flush_s)  # let a burst gather (the daemon's requests are counted)
            while not ended and len(pending) < batch_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _END:
                    ended = True
                else:
                    pending.append(item)
            if pending:
                lines = [LogLine(next_seq + i, r.stream, r.ts_ns, r.text, r.partial)
                         for i, r in enumerate(pending) if isinstance(r, RawLine)]
                if not self._store(lines):
                    return
                next_seq += len(lines)
                self.stored += len(lines)
        self._done.set()

    def _store(self, lines: list[LogLine]) -> bool:
        delay = 0.2
        while not self._stop.is_set():
            try:
                self._runs.append_logs(self.job_id, lines)
                return True
            except HcpError as exc:
                log.warning("storing %d log lines of job %s failed (%s); retrying", len(lines),
                            self.job_id, exc.code)
                self._sleep(delay)
                delay = min(5.0, delay * 2)
        return False
