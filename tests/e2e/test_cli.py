"""The main job as a user runs it: `hcp run`, then `hcp status` and `hcp switch` from another shell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.e2e.running import HCP, stop, wait_for_fleet


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e.update(HCP_HOME=str(tmp_path / "home"), HCP_RAY_TEMP_DIR=tempfile.mkdtemp(prefix="hcp-e2e-", dir="/tmp"),
             HCP_CHECKPOINT_SECONDS="1", PYTHONUNBUFFERED="1", HCP_API_PORT=str(_free_port()))
    e.pop("HCP_DATABASE_URL", None)
    e.pop("HCP_RAY_ADDRESS", None)
    return e


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_processes(temp_dir: str) -> list[str]:
    """Live processes of the Ray session under ``temp_dir``: by their command line or, for
    those that rename themselves (``ray::DashboardAgent``, actors), by the environment they
    inherited from the driver. Zombies are dead already and hold nothing."""
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmd = " ".join(proc.info["cmdline"] or [])
            if temp_dir in cmd or proc.environ().get("HCP_RAY_TEMP_DIR") == temp_dir:
                found.append(f"{proc.info['pid']} {cmd[:80]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _hcp(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HCP, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_run_status_switch_and_clean_shutdown(env: dict[str, str]) -> None:
    log_path = Path(env["HCP_HOME"]).parent / "run.log"
    with open(log_path, "w") as log:
        run = subprocess.Popen([HCP, "run", "--no-live", "--no-optimizer", "--duration", "300", "--refresh", "2"], env=env,
                               stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_fleet(run, log_path, timeout=240)

        st = _hcp(env, "status", "--json")
        assert st.returncode == 0, st.stderr
        reports = json.loads(st.stdout)
        gpus = {g["device_id"]: g for r in reports for g in r["gpus"]}
        assert set(gpus) == {"lab-gpu-0", "lab-gpu-1"}
        assert {g["mode"] for g in gpus.values()} == {"MINING"}
        assert {g["telemetry"]["source"] for g in gpus.values()} == {"simulated"}

        sw = _hcp(env, "switch", "lab-gpu-0", "inference", "--reason", "e2e")
        assert sw.returncode == 0, sw.stdout + sw.stderr
        assert "MINING → INFERENCE" in sw.stdout and "generation 2" in sw.stdout

        bad = _hcp(env, "switch", "lab-gpu-0", "TURBO")
        assert bad.returncode == 2 and "invalid_mode" in bad.stdout
        # An ASIC has no inference context: one typed line, no Ray traceback.
        asic = _hcp(env, "switch", "lab-s21-0", "INFERENCE")
        assert asic.returncode == 2 and "invalid_transition" in asic.stdout, asic.stdout
        assert "Traceback" not in asic.stdout + asic.stderr
        assert len((asic.stdout + asic.stderr).strip().splitlines()) == 1
        # What an ASIC switch did: the facility draw it changed and the committed generation.
        cut = _hcp(env, "switch", "lab-s21-0", "CURTAILED")
        assert cut.returncode == 0, cut.stdout + cut.stderr
        assert "MINING → CURTAILED" in cut.stdout and "generation 1" in cut.stdout
        assert "facility draw" in cut.stdout and "0.000 ms" not in cut.stdout
        missing = _hcp(env, "switch", "no-such-gpu", "IDLE")
        assert missing.returncode == 2 and "unknown_device" in missing.stdout

        st = json.loads(_hcp(env, "status", "--json").stdout)
        modes = {g["device_id"]: g["mode"] for r in st for g in r["gpus"]}
        assert modes == {"lab-gpu-0": "INFERENCE", "lab-gpu-1": "MINING"}

        # Another HCP_HOME on the same machine never attaches to this platform: it reports no
        # platform at once and shows its own (empty) store, not this fleet.
        other = {**env, "HCP_HOME": str(Path(env["HCP_HOME"]).parent / "other-home")}
        lone = _hcp(other, "status", "--json", timeout=60)
        assert lone.returncode == 0 and "no_cluster" in lone.stderr, lone.stderr
        assert json.loads(lone.stdout) == []
        assert "Traceback" not in lone.stderr and "InvalidAuthToken" not in lone.stderr
        # A plain command prints no log noise (no Alembic lines, no Ray warnings).
        quiet = _hcp(env, "status")
        assert "alembic" not in quiet.stderr and "WARNING" not in quiet.stderr, quiet.stderr
    finally:
        rc = stop(run, timeout=90)
    out = log_path.read_text()
    assert rc == 0, out[-3000:]
    assert "stopped." in out

    # With the fleet gone, status falls back to the committed state in the store.
    st = _hcp(env, "status", "--json")
    assert st.returncode == 0
    stored = {s["device_id"]: s for s in json.loads(st.stdout[st.stdout.index("["):])}
    assert stored["lab-gpu-0"]["mode"] == "INFERENCE" and stored["lab-gpu-0"]["generation"] == 2
    assert stored["lab-gpu-1"]["mode"] == "MINING" and stored["lab-gpu-1"]["hashes_done"] > 0
    ev = json.loads(_hcp(env, "events", "--device", "lab-gpu-0", "--json").stdout)
    changes = [(e["from_mode"], e["to_mode"], e["reason"]) for e in ev if e["kind"] == "mode_change"]
    assert changes == [("MINING", "INFERENCE", "e2e"), ("IDLE", "MINING", "platform start")]


def test_invalid_fleet_spec_is_refused_with_every_problem(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("fleet: x\nfacilities:\n  - name: a\n    location: here\n    capacity_mw: -1\n    pue: 9\n")
    r = _hcp(env, "validate-spec", str(bad))
    assert r.returncode == 2
    assert "invalid_fleet_spec" in r.stdout
    assert "capacity_mw" in r.stdout and "pue" in r.stdout
    r = _hcp(env, "run", "--spec", str(bad), "--duration", "1")
    assert r.returncode == 2 and "invalid_fleet_spec" in r.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_shutdown_is_complete_when_stdout_is_a_dead_pipe(env: dict[str, str], sig: int) -> None:
    """`make run | tee log`, then Ctrl-C kills tee (or a service manager stops it with
    SIGTERM, which Ray's own handler would turn into an abort): the shutdown runs to the end."""
    run = subprocess.Popen([HCP, "run", "--no-live", "--no-api", "--no-optimizer", "--duration", "300",
                            "--refresh", "2"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    assert run.stdout is not None
    deadline = time.monotonic() + 240
    seen = ""
    while "fleet running" not in seen:
        line = run.stdout.readline()
        assert line or run.poll() is None, seen[-3000:]
        seen += line
        assert time.monotonic() < deadline, seen[-3000:]
    run.stdout.close()  # the reader is gone: every later print hits a closed pipe
    run.send_signal(sig)
    try:
        rc = run.wait(timeout=120)
    except subprocess.TimeoutExpired:
        run.kill()
        raise
    assert rc == 0
    # Nothing of the platform is left: no process of its Ray session, no platform record.
    assert _session_processes(env["HCP_RAY_TEMP_DIR"]) == []
    assert not (Path(env["HCP_HOME"]) / "platform.json").exists()
    stored = json.loads(_hcp(env, "status", "--json").stdout)
    assert {s["device_id"] for s in stored} >= {"lab-gpu-0", "lab-gpu-1"}  # the final checkpoint


def test_a_killed_driver_takes_its_actors_along_and_the_next_run_resumes(env: dict[str, str]) -> None:
    """The platform's actors are owned by the `hcp run` driver, not detached (docs/architecture.md,
    "Topology"): SIGKILL of the driver leaves no process of its Ray session behind, `hcp status`
    answers from the store at once, and the next `hcp run --mode KEEP` resumes every GPU in
    its committed mode, with no switch made twice."""
    log_path = Path(env["HCP_HOME"]).parent / "run.log"

    def start(*extra: str) -> subprocess.Popen[str]:
        log = open(log_path, "w")  # noqa: SIM115 -- the child keeps it; closed with the process
        run = subprocess.Popen([HCP, "run", "--no-live", "--no-api", "--no-optimizer", "--no-oracle",
                                "--duration", "300", "--refresh", "2", *extra], env=env,
                               stdout=log, stderr=subprocess.STDOUT, text=True)
        log.close()
        wait_for_fleet(run, log_path, timeout=240)
        return run

    run = start()
    try:
        sw = _hcp(env, "switch", "lab-gpu-0", "inference", "--reason", "before the kill")
        assert sw.returncode == 0, sw.stdout + sw.stderr
        assert any("GpuActor" in p for p in _session_processes(env["HCP_RAY_TEMP_DIR"]))
    finally:
        run.kill()  # SIGKILL: no handler of its own runs, no shutdown step
        run.wait(timeout=60)

    # Ray's processes share the driver's fate: the whole session goes with it. Its two node
    # agents first try to report the raylet's death to the dead GCS, which takes them about
    # 100 s here; the actors go with their raylet at once.
    deadline = time.monotonic() + 240
    while left := _session_processes(env["HCP_RAY_TEMP_DIR"]):
        assert all("Agent" in p for p in left) or time.monotonic() < deadline - 200, left
        assert time.monotonic() < deadline, f"left behind: {left}"
        time.sleep(2)

    # The stale platform record names a dead driver: status reports no platform and reads
    # the committed state from the store, without waiting on Ray.
    st = _hcp(env, "status", "--json", timeout=60)
    assert st.returncode == 0 and "no_cluster" in st.stderr, st.stderr
    stored = {s["device_id"]: s for s in json.loads(st.stdout)}
    assert stored["lab-gpu-0"]["mode"] == "INFERENCE" and stored["lab-gpu-0"]["generation"] == 2
    assert stored["lab-gpu-1"]["mode"] == "MINING"

    run = start("--mode", "KEEP")
    try:
        live = json.loads(_hcp(env, "status", "--json").stdout)
        modes = {g["device_id"]: (g["mode"], g["generation"]) for r in live for g in r["gpus"]}
        assert modes == {"lab-gpu-0": ("INFERENCE", 2), "lab-gpu-1": ("MINING", 1)}, modes
    finally:
        rc = stop(run)
    assert rc == 0, log_path.read_text()[-3000:]
    ev = json.loads(_hcp(env, "events", "--device", "lab-gpu-0", "--json").stdout)
    changes = [(e["from_mode"], e["to_mode"], e["reason"]) for e in ev if e["kind"] == "mode_change"]
    assert changes == [("MINING", "INFERENCE", "before the kill"), ("IDLE", "MINING", "platform start")]
