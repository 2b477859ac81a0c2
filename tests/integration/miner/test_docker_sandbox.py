"""DockerSandbox against the real Docker Engine: same outcomes as the wasmtime sandbox,
inside a container that really has no network, no writable root and a memory cap."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import docker
import pytest
import wasmtime

from hcp.notary import reference_task as rt
from hcp.notary.sandbox.base import SandboxLimits, SandboxOutcome
from hcp.notary.sandbox.docker import DockerSandbox, _python_paths, ensure_image
from hcp.notary.sandbox.wasm import WasmtimeSandbox

LIMITS = SandboxLimits(fuel=50_000_000_000, memory_bytes=256 << 20, timeout_seconds=30,
                       max_stdout_bytes=4096)

_FD_WRITE = '(import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))'
INFINITE_LOOP = """(module (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))"""
# Grows linear memory 1 MiB at a time and touches every page, so it is really resident.
MEMORY_BOMB = """(module (memory (export "memory") 1)
  (func (export "_start") (local $p i32) (local $end i32)
    (loop $grow
      (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1)) (then unreachable))
      (local.set $end (i32.mul (memory.size) (i32.const 65536)))
      (block $done (loop $touch
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (i32.store (local.get $p) (i32.const 1))
        (local.set $p (i32.add (local.get $p) (i32.const 4096)))
        (br $touch)))
      (br $grow))))"""
TRAP = """(module (memory (export "memory") 1) (func (export "_start") unreachable))"""
SCORE_ONLY = f"""(module {_FD_WRITE} (memory (export "memory") 1)
  (data (i32.const 16) "final score: 0.9731\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 20))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    c = docker.from_env()
    ensure_image(c)  # built once per content hash; a few seconds the first time
    return c


def _workdir(tmp: Path, wasm: bytes, with_dataset: bool = True) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "train.wasm").write_bytes(wasm)
    if with_dataset:
        shutil.copy(rt.DATASET_PATH, tmp / "dataset.csv")
    return tmp


def test_reference_task_scores_exactly_as_in_process(client, tmp_path: Path) -> None:
    wd = _workdir(tmp_path, rt.wasm_bytes())
    (wd / "hyperparameters.json").write_bytes(rt.hyperparameters_json({"epochs": 20, "seed": 5}))
    in_docker = DockerSandbox(client).run(wd, LIMITS)
    in_process = WasmtimeSandbox().run(wd, LIMITS)
    assert in_docker.outcome is SandboxOutcome.OK, in_docker.detail
    assert in_docker.score == in_process.score and 0.9 < in_docker.score <= 1.0
    assert in_docker.stdout == in_process.stdout
    assert in_docker.fuel_consumed == in_process.fuel_consumed


def test_wat_module_prints_its_score(client, tmp_path: Path) -> None:
    res = DockerSandbox(client).run(_workdir(tmp_path, wasmtime.wat2wasm(SCORE_ONLY), False),
                                    LIMITS)
    assert (res.outcome, res.score) == (SandboxOutcome.OK, 0.9731)


def test_infinite_loop_times_out(client, tmp_path: Path) -> None:
    limits = SandboxLimits(fuel=10**15, memory_bytes=64 << 20, timeout_seconds=1.0,
                           max_stdout_bytes=1024)
    res = DockerSandbox(client).run(_workdir(tmp_path, wasmtime.wat2wasm(INFINITE_LOOP)), limits)
    assert res.outcome is SandboxOutcome.TIMEOUT
    assert res.score is None


def test_host_kills_a_container_that_outlives_the_deadline(client, tmp_path: Path) -> None:
    # Negative grace: the host-side kill fires before the in-container epoch deadline.
    sb = DockerSandbox(client, startup_grace_seconds=-8.0)
    limits = SandboxLimits(fuel=10**15, memory_bytes=64 << 20, timeout_seconds=10.0,
                           max_stdout_bytes=1024)
    res = sb.run(_workdir(tmp_path, wasmtime.wat2wasm(INFINITE_LOOP)), limits)
    assert res.outcome is SandboxOutcome.TIMEOUT
    assert "container killed" in res.detail
    leftover = client.containers.list(all=True,
                                      filters={"label": f"hcp.sandbox.pid={os.getpid()}"})
    assert leftover == []


def test_memory_bomb_is_killed_by_the_container_cap(client, tmp_path: Path) -> None:
    # The wasm limit (2 GiB) is far above the container's cap: the kernel's OOM killer stops it.
    sb = DockerSandbox(client, container_memory_bytes=160 << 20)
    limits = SandboxLimits(fuel=10**15, memory_bytes=2 << 30, timeout_seconds=60,
                           max_stdout_bytes=1024)
    res = sb.run(_workdir(tmp_path, wasmtime.wat2wasm(MEMORY_BOMB)), limits)
    assert res.outcome is SandboxOutcome.OUT_OF_MEMORY, res.detail
    assert "memory cap" in res.detail


def test_memory_bomb_hits_the_wasm_limit_first_with_default_cap(client, tmp_path: Path) -> None:
    limits = SandboxLimits(fuel=10**15, memory_bytes=32 << 20, timeout_seconds=60,
                           max_stdout_bytes=1024)
    res = DockerSandbox(client).run(_workdir(tmp_path, wasmtime.wat2wasm(MEMORY_BOMB)), limits)
    assert res.outcome is SandboxOutcome.OUT_OF_MEMORY, res.detail


def test_trap_and_invalid_wasm(client, tmp_path: Path) -> None:
    sb = DockerSandbox(client)
    trap = sb.run(_workdir(tmp_path / "t", wasmtime.wat2wasm(TRAP)), LIMITS)
    assert trap.outcome is SandboxOutcome.TRAP
    bad = sb.run(_workdir(tmp_path / "b", b"\0asm garbage"), LIMITS)
    assert bad.outcome is SandboxOutcome.INVALID_WASM


def test_container_has_no_network_no_writable_root_and_a_readonly_workdir(
        client, tmp_path: Path) -> None:
    """Run a probe with the sandbox's own flags: every escape attempt must fail."""
    wd = _workdir(tmp_path, b"x")
    probe = """
import os, socket
res = []
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2); res.append("net-open")
except OSError: res.append("net-blocked")
try:
    res.append("ifaces:" + ",".join(sorted(n for _, n in socket.if_nameindex())))
except OSError: res.append("ifaces:?")
for path in ("/escape", "/work/escape"):
    try:
        open(path, "w").write("x"); res.append("wrote " + path)
    except OSError: res.append("ro " + path)
open("/tmp/scratch", "w").write("ok"); res.append("tmp-ok")
res.append("caps:" + [l for l in open("/proc/self/status") if l.startswith("CapEff")][0].split()[1])
res.append("nnp:" + [l for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0].split()[1])
print(" ".join(res))
"""
    sb = DockerSandbox(client)
    opts = sb.container_options(wd, LIMITS)
    opts["detach"] = False
    exe, _ = _python_paths()
    out = client.containers.run(ensure_image(client), [str(exe), "-I", "-S", "-c", probe],
                                remove=True, **opts).decode()
    assert "net-blocked" in out and "net-open" not in out
    assert "ifaces:lo" in out.split()  # loopback only
    assert "ro /escape" in out and "ro /work/escape" in out and "tmp-ok" in out
    assert "caps:0000000000000000" in out and "nnp:1" in out
    assert not (wd / "escape").exists()
