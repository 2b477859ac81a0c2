"""SHA-256d on torch tensors: the numpy kernel's algorithm, run on CUDA (or CPU torch).

Torch has no usable uint32 arithmetic, so words live in int32 tensors: adds, xors and
left shifts give the same bits as uint32 (two's complement wraps), and a logical right
shift is an arithmetic shift followed by a mask that clears the copied sign bits. The
one unsigned comparison (the hash's top word against the target's) is done in int64.

Everything a batch touches is allocated once per batch size, on the device
("resident buffers"): the kernel's word buffers, the nonce ramp, the int64 and bool
scratch for the comparison. Constants go to kernels as scalar arguments, so a batch
launches no allocation and no host-to-device copy; the only sync is reading the hits.

``torch`` is imported lazily here and nowhere else in ``hcp.mining``, so the numpy
backend works without it.
"""

from __future__ import annotations

import logging
from typing import Any

from hcp.errors import MiningError
from hcp.mining.search import BatchSearcher

logger = logging.getLogger(__name__)


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a project dependency
        raise MiningError("the torch backend needs torch installed", reason=str(exc)) from None
    return torch


def _s32(c: int) -> int:
    """A uint32 constant as the int32 scalar with the same bits."""
    c &= 0xFFFFFFFF
    return c - (1 << 32) if c & 0x80000000 else c


# Masks that turn an arithmetic right shift by k into a logical one.
_RMASK = [_s32((1 << (32 - k)) - 1) if k else -1 for k in range(33)]


class TorchOps:
    """int32 tensor ops with ``out=``, implementing ``sha256_numpy.ArrayOps``."""

    def __init__(self, n: int, device: str) -> None:
        torch = _import_torch()
        self._torch = torch
        self.n = n
        self.device = torch.device(device)
        i32 = torch.int32
        self._arange = torch.arange(n, dtype=i32, device=self.device)
        self._n32 = torch.empty(n, dtype=i32, device=self.device)
        self._tmp32 = torch.empty(n, dtype=i32, device=self.device)
        self._b64 = torch.empty(n, dtype=torch.int64, device=self.device)
        self._mask = torch.empty(n, dtype=torch.bool, device=self.device)
        t = torch
        self._add, self._xor, self._and = t.add, t.bitwise_xor, t.bitwise_and
        self._or, self._shl, self._asr = t.bitwise_or, t.bitwise_left_shift, t.bitwise_right_shift

    def empty(self) -> Any:
        return self._torch.empty(self.n, dtype=self._torch.int32, device=self.device)

    def add(self, x: Any, y: Any, out: Any) -> None:
        self._add(x, y, out=out)

    def add_c(self, x: Any, c: int, out: Any) -> None:
        self._add(x, _s32(c), out=out)

    def xor(self, x: Any, y: Any, out: Any) -> None:
        self._xor(x, y, out=out)

    def and_(self, x: Any, y: Any, out: Any) -> None:
        self._and(x, y, out=out)

    def copy(self, x: Any, out: Any) -> None:
        out.copy_(x)

    def fill(self, out: Any, c: int) -> None:
        out.fill_(_s32(c))

    def _lsr(self, x: Any, k: int, out: Any) -> None:
        self._asr(x, k, out=out)
        self._and(out, _RMASK[k], out=out)

    def big_sigma(self, x: Any, out: Any, tmp: Any, rots: tuple[int, int, int]) -> None:
        shl, xor = self._shl, self._xor
        r1, r2, r3 = rots
        self._lsr(x, r1, out)
        shl(x, 32 - r1, out=tmp)
        xor(out, tmp, out=out)
        for r in (r2, r3):
            self._lsr(x, r, tmp)
            xor(out, tmp, out=out)
            shl(x, 32 - r, out=tmp)
            xor(out, tmp, out=out)

    def small_sigma(self, x: Any, out: Any, tmp: Any, rots: tuple[int, int], shift: int) -> None:
        shl, xor = self._shl, self._xor
        self._lsr(x, shift, out)
        for r in rots:
            self._lsr(x, r, tmp)
            xor(out, tmp, out=out)
            shl(x, 32 - r, out=tmp)
            xor(out, tmp, out=out)

    def _bswap(self, x: Any, out: Any) -> None:
        tmp = self._tmp32
        self._shl(x, 24, out=out)
        self._and(x, 0xFF00, out=tmp)
        self._shl(tmp, 8, out=tmp)
        self._or(out, tmp, out=out)
        self._asr(x, 8, out=tmp)  # sign copies are masked off below
        self._and(tmp, 0xFF00, out=tmp)
        self._or(out, tmp, out=out)
        self._asr(x, 24, out=tmp)
        self._and(tmp, 0xFF, out=tmp)
        self._or(out, tmp, out=out)

    def load_nonces(self, out: Any, start: int) -> None:
        # start + i wraps in int32 exactly like uint32; W3 is the byte-swapped nonce.
        self._add(self._arange, _s32(start), out=self._n32)
        self._bswap(self._n32, out)

    def candidates(self, h7: Any, count: int, top: int) -> tuple[list[int], list[int]]:
        self._bswap(h7, self._n32)
        b = self._b64[:count]
        b.copy_(self._n32[:count])
        self._and(b, 0xFFFFFFFF, out=b)  # unsigned value of the top word
        mask = self._mask[:count]
        self._torch.le(b, top, out=mask)
        idx = self._torch.nonzero(mask).flatten()  # the one device-to-host sync
        if idx.numel() == 0:
            return [], []
        vals = b[idx]
        return idx[vals < top].tolist(), idx[vals == top].tolist()


class TorchSearcher(BatchSearcher):
    """``BatchSearcher`` over ``TorchOps`` on one device."""

    def __init__(self, device: str = "cuda", batch_size: int | None = None) -> None:
        torch = _import_torch()
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise MiningError("CUDA is not available for the torch mining backend", device=device)
        # GPU: big batches amortise ~7k kernel launches; CPU: stay cache-sized.
        size = batch_size or (1 << 22 if dev.type == "cuda" else 1 << 17)
        self.device = str(dev)
        super().__init__(lambda n: TorchOps(n, str(dev)), size)

    def synchronize(self) -> None:
        torch = _import_torch()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
