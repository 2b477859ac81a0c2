"""WasmtimeSandbox: every outcome, and what the guest can and cannot reach."""

from __future__ import annotations

from pathlib import Path

import pytest

from hcp.errors import SandboxBusyError
from hcp.notary.pool import LocalSandboxPool, SandboxJob, run_job
from hcp.notary.sandbox.base import SandboxLimits, SandboxOutcome, parse_score
from tests.unit.notary import wat_modules as wat
from tests.unit.notary.support import shared_sandbox

LIMITS = SandboxLimits(fuel=10**10, memory_bytes=16 << 20, timeout_seconds=0.5,
                       max_stdout_bytes=4096)


def run(wasm: bytes, limits: SandboxLimits = LIMITS, dataset: bytes = b"a,b\n") -> object:
    return run_job(shared_sandbox(), SandboxJob(wasm, None, dataset, limits))


def test_score_is_read_from_stdout() -> None:
    r = run(wat.score_wasm("0.9731"))
    assert r.outcome is SandboxOutcome.OK and r.score == pytest.approx(0.9731)
    assert "training..." in r.stdout and r.fuel_consumed and r.fuel_consumed > 0


def test_infinite_loop_times_out_on_wall_clock() -> None:
    r = run(wat.infinite_loop_wasm())
    assert r.outcome is SandboxOutcome.TIMEOUT
    assert 0.4 < r.duration_seconds < 3.0


def test_fuel_bounds_instructions() -> None:
    r = run(wat.infinite_loop_wasm(), SandboxLimits(10**6, 16 << 20, 30.0, 4096))
    assert r.outcome is SandboxOutcome.FUEL_EXHAUSTED and r.duration_seconds < 5


def test_memory_bomb_hits_the_cap() -> None:
    r = run(wat.memory_bomb_wasm())
    assert r.outcome is SandboxOutcome.OUT_OF_MEMORY


def test_initial_memory_over_the_cap_is_out_of_memory() -> None:
    import wasmtime

    big = wasmtime.wat2wasm('(module (memory (export "memory") 1024) (func (export "_start")))')
    assert run(big).outcome is SandboxOutcome.OUT_OF_MEMORY


@pytest.mark.parametrize("wasm,outcome", [
    (wat.trap_wasm(), SandboxOutcome.TRAP),
    (b"\0asm\x01\0\0\0garbage", SandboxOutcome.INVALID_WASM),
    (b"", SandboxOutcome.INVALID_WASM),
    (wat.print_wasm("hello\n"), SandboxOutcome.NO_SCORE),
    (wat.print_wasm("final score: nan\n"), SandboxOutcome.NO_SCORE),
])
def test_failures_are_classified(wasm: bytes, outcome: SandboxOutcome) -> None:
    assert run(wasm).outcome is outcome


def test_module_without_start_is_invalid() -> None:
    import wasmtime

    assert run(wasmtime.wat2wasm("(module)")).outcome is SandboxOutcome.INVALID_WASM


def test_stdout_is_bounded() -> None:
    r = run(wat.print_wasm("y" * 3000 + "\nfinal score: 0.5\n"),
            SandboxLimits(10**9, 16 << 20, 2.0, 1000))
    assert len(r.stdout.encode()) == 1000
    assert r.outcome is SandboxOutcome.NO_SCORE and "truncated" in r.detail


def test_guest_reads_its_dataset_but_nothing_outside() -> None:
    assert run(wat.read_file_wasm("dataset.csv")).outcome is SandboxOutcome.OK
    for path in ("../../../../etc/passwd", "/etc/passwd", "../" * 10 + "etc/hostname"):
        assert run(wat.read_file_wasm(path)).outcome is SandboxOutcome.NO_SCORE, path


def test_workdir_is_removed(tmp_path: Path) -> None:
    run_job(shared_sandbox(), SandboxJob(wat.score_wasm(), b"{}", b"a", LIMITS), str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_local_pool_refuses_when_full() -> None:
    import threading

    pool = LocalSandboxPool(shared_sandbox(), workers=1, queue=0)
    started = threading.Event()
    results: list[object] = []

    def slow() -> None:
        started.set()
        results.append(pool.run(SandboxJob(wat.infinite_loop_wasm(), None, b"", LIMITS)))

    t = threading.Thread(target=slow)
    t.start()
    started.wait()
    import time

    deadline = time.monotonic() + 10
    while pool.in_use == 0:  # the slow job has not taken the only slot yet
        assert time.monotonic() < deadline, "the slow job never started"
        time.sleep(0.005)
    assert pool.in_use == 1
    with pytest.raises(SandboxBusyError):
        pool.run(SandboxJob(wat.score_wasm(), None, b"", LIMITS))
    t.join()
    assert pool.in_use == 0
    assert results[0].outcome is SandboxOutcome.TIMEOUT  # type: ignore[attr-defined]
    assert pool.run(SandboxJob(wat.score_wasm(), None, b"", LIMITS)).outcome is SandboxOutcome.OK


@pytest.mark.parametrize("text,score", [
    ("final score: 0.9731\n", 0.9731),
    ("final score: 1\nfinal score: 0.5", 0.5),
    ("x\nfinal score:   -2.5e-1  \n", -0.25),
    ("the final score: 0.9\n", None),
    ("final score: inf\n", None),
    ("", None),
])
def test_parse_score(text: str, score: float | None) -> None:
    assert parse_score(text) == score
