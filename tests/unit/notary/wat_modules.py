"""Small WASI test modules written in WAT (compiled with wasmtime.wat2wasm by the tests)."""

from __future__ import annotations

import wasmtime


def _print_module(text: str, extra_start: str = "") -> str:
    data = text.encode()
    escaped = "".join(f"\\{b:02x}" for b in data)
    return f"""
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{escaped}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len(data)}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))
    {extra_start})
)
"""


def score_wasm(score: str = "0.9731") -> bytes:
    """Prints ``final score: <score>`` and exits normally."""
    return wasmtime.wat2wasm(_print_module(f"training...\nfinal score: {score}\n"))


def print_wasm(text: str) -> bytes:
    return wasmtime.wat2wasm(_print_module(text))


def infinite_loop_wasm() -> bytes:
    return wasmtime.wat2wasm("""
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))
""")


def memory_bomb_wasm() -> bytes:
    """Grows memory until refused, then traps (what a C program does when malloc fails)."""
    return wasmtime.wat2wasm("""
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $l
      (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1)) (then unreachable))
      (br $l))))
""")


def trap_wasm() -> bytes:
    return wasmtime.wat2wasm("""
(module
  (memory (export "memory") 1)
  (func (export "_start") unreachable))
""")


def read_file_wasm(path: str) -> bytes:
    """Opens ``path`` under the preopened dir fd 3 and prints ``final score: 1`` if it can."""
    data = path.encode()
    escaped = "".join(f"\\{b:02x}" for b in data)
    msg = b"final score: 1\n"
    msg_esc = "".join(f"\\{b:02x}" for b in msg)
    return wasmtime.wat2wasm(f"""
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "{escaped}")
  (data (i32.const 512) "{msg_esc}")
  (func (export "_start")
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 256)
                   (i32.const {len(data)}) (i32.const 0) (i64.const 2) (i64.const 0)
                   (i32.const 0) (i32.const 128)))
      (then
        (i32.store (i32.const 0) (i32.const 512))
        (i32.store (i32.const 4) (i32.const {len(msg)}))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))))))
""")
