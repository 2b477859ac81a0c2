"""The run store: idempotent appends, append-only evidence, cursors, resume points, runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from hcp.agent.messages import LogLine, MetricSample, Phase, Reason, ResumePoint, RunRecord
from hcp.agent.store import SqlRunStore

S = 10**9


def test_appends_are_idempotent_and_reads_follow_the_cursor(engine) -> None:  # type: ignore[no-untyped-def]
    runs = SqlRunStore(engine)
    lines = [LogLine(i, "stdout", (100 + i) * S, f"l{i}") for i in range(5)]
    runs.append_logs("j", lines[:3])
    runs.append_logs("j", lines[1:])  # a retry that overlaps what is stored
    assert [ln.text for ln in runs.read_logs("j", -1, 10)] == ["l0", "l1", "l2", "l3", "l4"]
    assert [ln.seq for ln in runs.read_logs("j", 2, 10)] == [3, 4]
    assert [ln.seq for ln in runs.read_logs("j", 0, 2)] == [1, 2]
    assert runs.read_logs("other", -1, 10) == []


def test_logs_and_samples_are_append_only(engine) -> None:  # type: ignore[no-untyped-def]
    runs = SqlRunStore(engine)
    runs.append_logs("j", [LogLine(0, "stdout", S, "evidence")])
    runs.append_metrics("j", [MetricSample(0, datetime(2026, 12, 1, tzinfo=UTC), 1.0, 2, 3, 4, {"source": "simulated"})])
    for stmt in ("UPDATE ag_log_lines SET text = 'x'", "DELETE FROM ag_log_lines",
                 "UPDATE ag_metric_samples SET cpu_pct = 0", "DELETE FROM ag_metric_samples"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(stmt))
    assert runs.read_logs("j", -1, 10)[0].text == "evidence"


def test_the_resume_point_counts_lines_from_a_second_before_the_newest(engine) -> None:  # type: ignore[no-untyped-def]
    runs = SqlRunStore(engine)
    assert runs.log_resume("j", 2) == ResumePoint(0, 0, 0)
    stamps = [100 * S, 105 * S, 107 * S + 5, 107 * S + 1, 108 * S]
    runs.append_logs("j", [LogLine(i, "stdout", t, "x") for i, t in enumerate(stamps)])
    # newest second 108, margin 2 -> since 106: three stored lines carry 106 s or later
    assert runs.log_resume("j", 2) == ResumePoint(5, 106, 3)


def test_runs_round_trip_and_unsettled_ones_are_listed(engine) -> None:  # type: ignore[no-untyped-def]
    runs = SqlRunStore(engine)
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    a = RunRecord("a", "node", "prov", "gpu-0", Phase.RUNNING, now, container_id="c1",
                  container_started_at=now)
    runs.save_run(a)
    runs.save_run(RunRecord("b", "node", "prov", "gpu-1", Phase.SETTLED, now, reason=Reason.EXITED))
    assert runs.get_run("a") == a
    assert [r.job_id for r in runs.runs_of("node")] == ["a"]
    assert [r.job_id for r in runs.runs_of("node", unsettled_only=False)] == ["a", "b"]
    runs.save_run(a.but(phase=Phase.SETTLED, reason=Reason.STOPPED_BY_RENTER))
    assert runs.get_run("a").reason is Reason.STOPPED_BY_RENTER  # type: ignore[union-attr]
    assert RunRecord.from_dict(a.to_dict()) == a


def test_last_evidence_is_the_newest_line_or_sample(engine) -> None:  # type: ignore[no-untyped-def]
    runs = SqlRunStore(engine)
    assert runs.last_evidence_at("j") is None
    runs.append_logs("j", [LogLine(0, "stdout", 1_800_000_000 * S, "x")])
    assert runs.last_evidence_at("j") == datetime.fromtimestamp(1_800_000_000, UTC)
    later = datetime.fromtimestamp(1_800_000_100, UTC)
    runs.append_metrics("j", [MetricSample(0, later, 0.0, 0, 0, 0, {})])
    assert runs.last_evidence_at("j") == later
    assert runs.next_metric_seq("j") == 1
