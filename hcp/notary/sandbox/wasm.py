"""The in-process sandbox: wasmtime with fuel, a memory cap, an epoch deadline and bare WASI.

Isolation comes from WebAssembly itself: the guest reaches the host only through the WASI
imports we configure — argv, no environment, the workdir preopened read-only as ``/work``
(and ``.``), stdout captured into a bounded buffer, no sockets (WASI preview 1 has no way
to open one). Three independent limits stop abuse: fuel bounds instructions, the store's
memory limit bounds linear memory, and the epoch ticker bounds wall-clock time.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path

import wasmtime

from hcp.notary.sandbox.base import (
    GUEST_DIR,
    WASM_NAME,
    SandboxLimits,
    SandboxOutcome,
    SandboxResult,
    parse_score,
)

log = logging.getLogger(__name__)

_WASM_PAGE = 64 * 1024


class _EpochTicker:
    """Advances an engine's epoch every ``tick`` seconds; deadlines are counted in ticks."""

    def __init__(self, engine: wasmtime.Engine, tick: float) -> None:
        self.tick = tick
        self._engine = engine
        self._thread = threading.Thread(target=self._run, name="wasm-epoch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.tick)
            self._engine.increment_epoch()


class _BoundedOutput:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.dropped = 0

    def __call__(self, data: bytes) -> int:
        room = self.limit - len(self.buf)
        if room > 0:
            self.buf += data[:room]
        self.dropped += max(0, len(data) - max(room, 0))
        # Claim everything was written: a guest must not learn the bound or spin on it.
        return len(data)


class WasmtimeSandbox:
    """Runs WASI command modules (``_start``). Thread-safe: one engine, one store per run."""

    def __init__(self, tick_seconds: float = 0.02, module_cache: int = 16) -> None:
        cfg = wasmtime.Config()
        cfg.consume_fuel = True
        cfg.epoch_interruption = True
        self.engine = wasmtime.Engine(cfg)
        self._ticker = _EpochTicker(self.engine, tick_seconds)
        # Miners mostly resubmit the same train.wasm with new hyperparameters: compiled modules
        # are immutable and shareable across stores, so keep the recent ones by content hash.
        self._modules: OrderedDict[str, wasmtime.Module] = OrderedDict()
        self._cache_size = module_cache
        self._cache_lock = threading.Lock()

    def _module(self, wasm_path: Path) -> wasmtime.Module:
        data = wasm_path.read_bytes()
        key = hashlib.sha256(data).hexdigest()
        with self._cache_lock:
            module = self._modules.get(key)
            if module is not None:
                self._modules.move_to_end(key)
                return module
        module = wasmtime.Module(self.engine, data)
        with self._cache_lock:
            self._modules[key] = module
            while len(self._modules) > self._cache_size:
                self._modules.popitem(last=False)
        return module

    def run(self, workdir: Path, limits: SandboxLimits) -> SandboxResult:
        started = time.perf_counter()
        wasm_path = Path(workdir) / WASM_NAME

        def result(outcome: SandboxOutcome, detail: str, out: _BoundedOutput | None = None,
                   score: float | None = None, fuel: int | None = None) -> SandboxResult:
            stdout = out.buf.decode("utf-8", errors="replace") if out else ""
            if out and out.dropped:
                detail = f"{detail} (stdout truncated, {out.dropped} bytes dropped)"
            return SandboxResult(outcome, score, stdout, time.perf_counter() - started, fuel,
                                 detail)

        try:
            module = self._module(wasm_path)
        except FileNotFoundError:
            return result(SandboxOutcome.INVALID_WASM, f"no {WASM_NAME} in the artifact")
        except wasmtime.WasmtimeError as exc:
            return result(SandboxOutcome.INVALID_WASM, f"invalid wasm: {_first_line(exc)}")

        out = _BoundedOutput(limits.max_stdout_bytes)
        store = wasmtime.Store(self.engine)
        store.set_limits(memory_size=limits.memory_bytes)
        store.set_fuel(limits.fuel)
        ticks = max(1, int(limits.timeout_seconds / self._ticker.tick + 0.999))
        store.set_epoch_deadline(ticks)
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["train.wasm"]
        wasi.stdout_custom = out
        wasi.stderr_custom = _BoundedOutput(0)
        wasi.preopen_dir(str(workdir), GUEST_DIR, False)
        wasi.preopen_dir(str(workdir), ".", False)
        store.set_wasi(wasi)
        linker = wasmtime.Linker(self.engine)
        linker.define_wasi()

        def fuel_used() -> int:
            try:
                return limits.fuel - store.get_fuel()
            except wasmtime.WasmtimeError:
                return limits.fuel

        def memory_full(instance: wasmtime.Instance | None) -> bool:
            if instance is None:
                return False
            mem = instance.exports(store).get("memory")
            if not isinstance(mem, wasmtime.Memory):
                return False
            # wasmtime-py exposes no resource-limiter callback, so a refused memory.grow is
            # inferred: the guest failed while its memory sat within 1/8 of the cap.
            headroom = max(limits.memory_bytes // 8, 2 * _WASM_PAGE)
            return mem.data_len(store) + headroom > limits.memory_bytes

        instance: wasmtime.Instance | None = None
        try:
            instance = linker.instantiate(store, module)
            start = instance.exports(store).get("_start")
            if not isinstance(start, wasmtime.Func):
                return result(SandboxOutcome.INVALID_WASM, "module exports no _start function")
            start(store)
        except wasmtime.ExitTrap as exc:
            if exc.code != 0:
                if memory_full(instance):
                    return result(SandboxOutcome.OUT_OF_MEMORY,
                                  f"exited with code {exc.code} at the memory cap", out,
                                  fuel=fuel_used())
                return result(SandboxOutcome.TRAP, f"exited with code {exc.code}", out,
                              fuel=fuel_used())
        except wasmtime.Trap as exc:
            code = exc.trap_code
            if code == wasmtime.TrapCode.INTERRUPT:
                return result(SandboxOutcome.TIMEOUT,
                              f"wall-clock limit of {limits.timeout_seconds:g}s exceeded", out,
                              fuel=fuel_used())
            if code == wasmtime.TrapCode.OUT_OF_FUEL:
                return result(SandboxOutcome.FUEL_EXHAUSTED,
                              f"fuel limit of {limits.fuel} exhausted", out, fuel=limits.fuel)
            if memory_full(instance):
                return result(SandboxOutcome.OUT_OF_MEMORY,
                              f"trapped at the memory cap: {_first_line(exc)}", out,
                              fuel=fuel_used())
            what = code.name.lower() if code is not None else _first_line(exc)
            return result(SandboxOutcome.TRAP, f"trap: {what}", out, fuel=fuel_used())
        except wasmtime.WasmtimeError as exc:
            msg = _first_line(exc)
            if instance is None and "memory" in msg and ("limit" in msg or "size" in msg
                                                         or "grow" in msg):
                return result(SandboxOutcome.OUT_OF_MEMORY, f"cannot instantiate: {msg}", out)
            if instance is None:
                return result(SandboxOutcome.INVALID_WASM, f"cannot instantiate: {msg}", out)
            return result(SandboxOutcome.TRAP, f"runtime error: {msg}", out, fuel=fuel_used())
        stdout = out.buf.decode("utf-8", errors="replace")
        score = parse_score(stdout)
        if score is None:
            return result(SandboxOutcome.NO_SCORE, "no 'final score: <float>' line on stdout", out,
                          fuel=fuel_used())
        return result(SandboxOutcome.OK, "ok", out, score=score, fuel=fuel_used())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
