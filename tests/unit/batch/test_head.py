"""The batch head's bookkeeping without Ray: ports, its record, and stopping exactly its processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from hcp.batch.head import (
    RESERVED,
    HeadRecord,
    _free_ports,
    head_processes,
    head_status,
    stop_head,
    temp_dir_for,
)
from hcp.errors import NoClusterError


def test_free_ports_skip_ray_and_redis_defaults() -> None:
    ports = _free_ports(30)
    assert len(set(ports)) == 30 and not RESERVED & set(ports)


def test_temp_dir_is_short_and_stable_for_any_home(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 150)
    assert temp_dir_for(deep) == temp_dir_for(deep) != temp_dir_for(tmp_path)
    assert len(str(temp_dir_for(deep))) < 30  # leaves room under Ray's 107-byte socket paths


def _record(tmp_path: Path, temp: str) -> HeadRecord:
    rec = HeadRecord({"port": 1, "dashboard-port": 2}, (20000, 20010), temp, str(tmp_path / "t"), time.time())
    rec.save(tmp_path)
    return rec


def test_stop_takes_the_heads_processes_and_their_children_only(tmp_path: Path) -> None:
    temp = f"/tmp/hcp-head-unit-{tmp_path.name}"
    # A stand-in head: a process naming the head's temp dir, with a child (a job) that does not.
    script = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
              "'import time; time.sleep(600)']); time.sleep(600)")
    head = subprocess.Popen([sys.executable, "-c", script, f"--temp-dir={temp}"])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "/tmp/ray/session_x"])
    try:
        rec = _record(tmp_path, temp)
        assert HeadRecord.load(tmp_path) == rec
        deadline = time.monotonic() + 20
        while len(head_processes(rec)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        pids = {p.pid for p in head_processes(rec)}
        assert head.pid in pids and other.pid not in pids
        assert head_status(tmp_path)["running"] is True
        assert stop_head(tmp_path, grace_s=5) >= 2
        head.wait(timeout=10)
        assert all(not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE
                   for p in pids)
        assert other.poll() is None  # not this head's
        assert HeadRecord.load(tmp_path) is None and head_status(tmp_path) == {"running": False}
        with pytest.raises(NoClusterError):
            stop_head(tmp_path)
    finally:
        for p in (head, other):
            p.kill()
            p.wait()


def test_an_unreadable_record_is_a_config_error(tmp_path: Path) -> None:
    from hcp.errors import ConfigError

    (tmp_path / "ray-head.json").write_text("{not json")
    with pytest.raises(ConfigError):
        HeadRecord.load(tmp_path)
