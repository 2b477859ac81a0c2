"""Deterministic byte streams for reference vectors, benchmarks and tests.

Block ``j`` (4 KiB) of stream ``seed`` is ``sha256(f"{seed}:{j}")`` repeated 128 times; the
JS reference script in tests/integration/images generates the same bytes, so both importers
see one input without a file of it being kept anywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

BLOCK = 4096


def pattern_block(seed: str, j: int) -> bytes:
    return hashlib.sha256(f"{seed}:{j}".encode()).digest() * (BLOCK // 32)


def pattern_stream(seed: str, size: int, piece: int = 1 << 20) -> Iterator[bytes]:
    """``size`` bytes of stream ``seed``, in pieces of about ``piece`` bytes."""
    per = max(1, piece // BLOCK)
    j = 0
    left = size
    while left > 0:
        buf = b"".join(pattern_block(seed, j + k) for k in range(per))
        j += per
        out = buf[:left]
        left -= len(out)
        yield out


def pattern_bytes(seed: str, size: int) -> bytes:
    return b"".join(pattern_stream(seed, size))
