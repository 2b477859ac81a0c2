"""Mining backends: one ``search`` contract, four engines (hashlib, numpy, numba, torch).

``search(header80, start_nonce, count, target)`` returns, in ascending order, every nonce
in ``[start_nonce, start_nonce + count)`` whose header (``header80`` with that nonce)
hashes to a value <= ``target``. The nonce field already in ``header80`` is ignored.
All backends return exactly the same set; they differ only in speed.

The backends here also take an optional ``cancel`` keyword (a ``threading.Event`` or a
callable returning bool). When it turns true mid-search they raise ``SearchCancelled``
instead of returning: the range was not fully searched and must be searched again.
The numpy / torch kernels check it between SHA-256 rounds, hashlib every 1,024 nonces,
numba between kernel calls (a numba batch is short enough not to need more).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Protocol, runtime_checkable

from hcp.errors import MiningError
from hcp.mining.header import HEADER_LEN, UINT32_MAX, BlockHeader, bits_to_target, check_target
from hcp.mining.search import (  # noqa: F401 -- part of this module's face
    BatchSearcher,
    CancelCheck,
    SearchCancelled,
    cancel_check,
    verify_nonce,
)
from hcp.mining.sha256_numpy import NumpyOps

logger = logging.getLogger(__name__)

NONCE_SPACE = UINT32_MAX + 1

# The genesis block: a real header with a known nonce, used by self-tests and health checks.
GENESIS_HEADER_HEX = (
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67"
    "768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c"
)
GENESIS_HEADER = BlockHeader.from_hex(GENESIS_HEADER_HEX)
GENESIS_NONCE = GENESIS_HEADER.nonce  # 2083236893
GENESIS_TARGET = bits_to_target(GENESIS_HEADER.bits)


@runtime_checkable
class MiningBackend(Protocol):
    """What a mining context needs; ``search`` may also accept ``cancel=`` (see above)."""

    name: str
    device: str

    def search(self, header80: bytes, start_nonce: int, count: int, target: int) -> list[int]: ...

    def warm(self) -> None: ...


def validate_search(header80: object, start_nonce: object, count: object, target: object) -> bytes:
    """Check a search request at the edge; returns the 76-byte prefix that the nonce follows."""
    if not isinstance(header80, (bytes, bytearray, memoryview)) or len(header80) != HEADER_LEN:
        length = len(header80) if hasattr(header80, "__len__") else None
        raise MiningError("header must be exactly 80 bytes", length=length)
    for name, value in (("start_nonce", start_nonce), ("count", count)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise MiningError(f"{name} must be an integer", field=name, value=repr(value))
    assert isinstance(start_nonce, int) and isinstance(count, int)
    if not 0 <= start_nonce <= UINT32_MAX:
        raise MiningError("start_nonce must be in 0..2^32-1", start_nonce=start_nonce)
    if count < 0:
        raise MiningError("count must not be negative", count=count)
    if start_nonce + count > NONCE_SPACE:
        raise MiningError(
            "nonce range crosses the 2^32 boundary; bump the extranonce instead",
            start_nonce=start_nonce,
            count=count,
        )
    check_target(target)  # type: ignore[arg-type]
    return bytes(header80[:76])


class NumpySearcher:
    """Numpy SHA-256d search, optionally split across threads (ufuncs release the GIL)."""

    def __init__(self, batch_size: int = 1 << 15, threads: int = 1) -> None:
        if threads < 1 or batch_size < 1:
            raise MiningError(
                "threads and batch_size must be positive", threads=threads, batch_size=batch_size
            )
        self.batch_size = batch_size
        self.threads = threads
        self._searchers = [BatchSearcher(NumpyOps, batch_size) for _ in range(threads)]
        self._pool = (
            ThreadPoolExecutor(threads, thread_name_prefix="sha256d") if threads > 1 else None
        )

    def search(
        self, prefix: bytes, start: int, count: int, target: int, cancel: CancelCheck | None = None
    ) -> list[int]:
        if self._pool is None or count < 2 * self.threads * 1024:
            return self._searchers[0].search(prefix, start, count, target, cancel)
        step = -(-count // self.threads)
        parts = [(s, min(step, start + count - s)) for s in range(start, start + count, step)]
        futures = [
            self._pool.submit(self._searchers[i].search, prefix, s, n, target, cancel)
            for i, (s, n) in enumerate(parts)
        ]
        wait(futures)  # even when one part fails: no part may still be using its buffers
        return sorted(x for fut in futures for x in fut.result())


def _scalar_search(
    prefix: bytes, start: int, count: int, target: int, cancel: CancelCheck | None = None
) -> list[int]:
    sha = hashlib.sha256
    found = []
    for nonce in range(start, start + count):
        if cancel is not None and (nonce - start) % 1024 == 0 and cancel():
            raise SearchCancelled(nonce)
        digest = sha(sha(prefix + nonce.to_bytes(4, "little")).digest()).digest()
        if int.from_bytes(digest, "little") <= target:
            found.append(nonce)
    return found


class HashlibBackend:
    """A plain Python loop over hashlib: the correctness reference and the speed baseline."""

    name = "hashlib"
    device = "cpu"

    def search(
        self, header80: bytes, start_nonce: int, count: int, target: int, cancel: object = None
    ) -> list[int]:
        prefix = validate_search(header80, start_nonce, count, target)
        return _scalar_search(prefix, start_nonce, count, target, cancel_check(cancel))

    def warm(self) -> None:
        if not verify_nonce(GENESIS_HEADER.serialize()[:76], GENESIS_NONCE, GENESIS_TARGET):
            raise MiningError("hashlib self-test failed on the genesis block")


class _VectorBackend:
    """Shared shape of the array backends: tiny ranges go scalar, the rest to the kernel.

    A numpy / torch batch costs thousands of array calls whatever its size (a numba one
    a few microseconds of setup), so below ``scalar_below`` nonces hashlib is faster; that
    keeps a 1-nonce health check in microseconds. Results are identical either way.
    """

    name = "vector"
    device = "cpu"

    def __init__(self, searcher: Any, scalar_below: int) -> None:
        self._searcher = searcher
        self.scalar_below = max(0, scalar_below)
        self.batch_size: int = searcher.batch_size
        self.verified = False

    def search(
        self, header80: bytes, start_nonce: int, count: int, target: int, cancel: object = None
    ) -> list[int]:
        prefix = validate_search(header80, start_nonce, count, target)
        check = cancel_check(cancel)
        if count == 0:
            return []
        if count < self.scalar_below:
            return _scalar_search(prefix, start_nonce, count, target, check)
        return self._searcher.search(prefix, start_nonce, count, target, check)

    def warm(self) -> None:
        """Build the full-size buffers and prove the kernel on a real block, once."""
        if self.verified:
            return
        half = self.batch_size // 2
        start = GENESIS_NONCE - half
        prefix = GENESIS_HEADER.serialize()[:76]
        found = self._searcher.search(prefix, start, self.batch_size, GENESIS_TARGET)
        if found != [GENESIS_NONCE]:
            raise MiningError(
                f"{self.name} self-test failed on the genesis block", found=found[:10]
            )
        self.verified = True
        logger.info(
            "mining backend %s on %s warmed (batch %d)", self.name, self.device, self.batch_size
        )


class NumpyBackend(_VectorBackend):
    """Vectorised numpy SHA-256d; ``threads`` > 1 splits each range across cores."""

    name = "numpy"
    device = "cpu"

    def __init__(
        self, batch_size: int = 1 << 15, threads: int = 1, scalar_below: int = 256
    ) -> None:
        super().__init__(NumpySearcher(batch_size=batch_size, threads=threads), scalar_below)
        self.threads = threads


class NumbaBackend(_VectorBackend):
    """SHA-256d compiled by numba (vectorised 8 nonces wide on AVX2); the GIL is released.

    ``batch_size`` caps the nonces per kernel call, not a context's batch. The first
    ``warm`` compiles the kernel (~10 s) unless numba's disk cache already has it.
    """

    name = "numba"
    device = "cpu"

    def __init__(self, batch_size: int = 1 << 16, scalar_below: int = 8) -> None:
        from hcp.mining.sha256_numba import NumbaSearcher  # keeps numba out of other imports

        super().__init__(NumbaSearcher(batch_size=batch_size), scalar_below)


class TorchBackend(_VectorBackend):
    """The same kernel on torch tensors: ``device="cuda"`` on GPU nodes, ``"cpu"`` for tests."""

    def __init__(
        self, device: str = "cuda", batch_size: int | None = None, scalar_below: int = 256
    ) -> None:
        from hcp.mining.sha256_torch import TorchSearcher  # keeps torch out of numpy-only imports

        searcher = TorchSearcher(device=device, batch_size=batch_size)
        self.device = searcher.device
        self.name = "torch-cuda" if self.device.startswith("cuda") else "torch-cpu"
        super().__init__(searcher, scalar_below)

    def warm(self) -> None:
        super().warm()
        self._searcher.synchronize()


def cuda_available() -> bool:
    """True when torch is installed and sees a GPU (imports torch only if it is installed)."""
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a broken CUDA install must not take mining down; numpy still works
        logger.warning("torch is installed but CUDA probing failed", exc_info=True)
        return False


def numba_available() -> bool:
    """True when numba (and its llvmlite) imports; it is not imported otherwise."""
    if importlib.util.find_spec("numba") is None:
        return False
    try:
        import numba  # noqa: F401
    except Exception:  # e.g. an llvmlite / numpy mismatch: numpy still works
        logger.warning("numba is installed but does not import", exc_info=True)
        return False
    return True


def make_backend(name: str = "auto", **options: Any) -> MiningBackend:
    """``auto`` picks torch-cuda when a GPU is visible, else numba, else numpy."""
    key = (name or "auto").strip().lower()
    if key == "auto":
        if cuda_available():
            key = "torch-cuda"
        else:
            key = "numba" if numba_available() else "numpy"
    if key == "hashlib":
        return HashlibBackend()
    if key == "numpy":
        return NumpyBackend(**options)
    if key == "numba":
        return NumbaBackend(**options)
    if key in ("torch-cuda", "cuda"):
        return TorchBackend(device="cuda", **options)
    if key == "torch-cpu":
        return TorchBackend(device="cpu", **options)
    raise MiningError(
        "unknown mining backend; expected auto, hashlib, numpy, numba, torch-cpu or torch-cuda",
        backend=name,
    )
