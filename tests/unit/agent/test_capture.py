"""Log capture resumes without losing or repeating a line: whatever prefix of the Engine's log
a crashed capture had stored, the next one stores exactly the rest, in order."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcp.agent.capture import LogCapture
from hcp.agent.messages import ContainerSpec, LogLine, NetworkMode, RawLine
from hcp.agent.settings import AgentSettings
from hcp.agent.store import SqlRunStore
from tests.unit.agent.fakes import FakeContainers, ManualClock

BASE_S = 1_800_000_000


def _spec(name: str) -> ContainerSpec:
    return ContainerSpec(name, "img", None, {}, {}, 10**9, 1 << 30, 64, NetworkMode.NONE, {},
                         None, None, True)


# Timestamps (seconds from a base, nanoseconds) may tie and may step back a little across
# streams (the Engine stamps stdout and stderr on separate goroutines).
lines_strategy = st.lists(
    st.tuples(st.integers(0, 20), st.integers(0, 3), st.sampled_from(["stdout", "stderr"]),
              st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)),
    min_size=0, max_size=60)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=lines_strategy, cut=st.integers(0, 60), margin=st.integers(1, 5))
def test_resume_after_any_prefix_stores_exactly_the_rest(engine, raw, cut, margin) -> None:  # type: ignore[no-untyped-def]
    runs = SqlRunStore(engine)
    containers = FakeContainers(ManualClock())
    job = f"job-{abs(hash((tuple(raw), cut, margin))) % 10**12}"
    cid = containers.create(_spec(job))
    containers.start(cid)
    t = 0
    for sec, jitter, stream, text in raw:
        t = max(t, sec)
        # non-decreasing seconds; within a second, nanoseconds may go back by a little
        containers.emit(cid, text, stream, ts_ns=(BASE_S + t) * 10**9 + 1000 - jitter)
    containers.exit(cid, 0)
    log = containers.containers[cid].logs
    k = min(cut, len(log))
    runs.append_logs(job, [LogLine(i, r.stream, r.ts_ns, r.text) for i, r in enumerate(log[:k])])
    cap = LogCapture(job, cid, containers, runs, AgentSettings(resume_margin_seconds=margin)).start()
    assert cap.wait(10)
    stored = runs.read_logs(job, -1, 1000)
    assert [(ln.seq, ln.stream, ln.text) for ln in stored] == [
        (i, r.stream, r.text) for i, r in enumerate(log)]


def test_a_store_outage_is_retried_with_the_same_numbers(engine) -> None:  # type: ignore[no-untyped-def]
    runs = SqlRunStore(engine)
    fails = {"n": 2}

    class Flaky:
        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(runs, name)

        def append_logs(self, job_id: str, lines: list[LogLine]) -> None:
            from hcp.errors import StoreError

            if fails["n"]:
                fails["n"] -= 1
                runs.append_logs(job_id, lines[:1])  # half written, then the answer is lost
                raise StoreError("the store went away")
            runs.append_logs(job_id, lines)

    containers = FakeContainers(ManualClock())
    cid = containers.create(_spec("j"))
    containers.start(cid)
    for i in range(5):
        containers.emit(cid, f"l{i}")
    containers.exit(cid, 0)
    cap = LogCapture("j", cid, containers, Flaky(), AgentSettings(), sleep=lambda s: None).start()  # type: ignore[arg-type]
    assert cap.wait(10)
    assert [ln.text for ln in runs.read_logs("j", -1, 100)] == [f"l{i}" for i in range(5)]


def test_a_dropped_engine_stream_is_reported() -> None:
    class Dropping(FakeContainers):
        def follow_logs(self, container_id: str, since_s: int):  # type: ignore[no-untyped-def]
            yield RawLine("stdout", 1, "one")
            from hcp.errors import ContainerEngineError

            raise ContainerEngineError("log stream lost: ConnectionError")

    stored: list[LogLine] = []

    class Sink:
        def log_resume(self, job_id: str, margin_s: int):  # type: ignore[no-untyped-def]
            from hcp.agent.messages import ResumePoint

            return ResumePoint(0, 0, 0)

        def append_logs(self, job_id: str, lines: list[LogLine]) -> None:
            stored.extend(lines)

    cap = LogCapture("j", "c", Dropping(ManualClock()), Sink(), AgentSettings()).start()  # type: ignore[arg-type]
    assert cap.wait(5) and cap.error == "log stream lost: ConnectionError"
    assert [ln.text for ln in stored] == ["one"]
