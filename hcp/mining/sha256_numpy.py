"""Vectorised SHA-256d over a batch of nonces, written once against a tiny array-ops API.

The kernel (``Sha256dKernel``) is backend-neutral: it drives an ``ArrayOps`` object that
owns preallocated buffers and knows how to add / xor / rotate 32-bit words. ``NumpyOps``
(here) uses numpy uint32 ufuncs with ``out=``; ``sha256_torch.TorchOps`` uses int32
tensors. What the kernel skips, per batch, because it does not depend on the nonce:

- the first 64 header bytes: compressed once per job into the *midstate*;
- rounds 0-2 of the second block (their W words are merkle tail, time, bits) and the
  constant half of round 3: folded into Python ints per job;
- every schedule term built only from constant words (folded as ints as it goes);
- in the second hash, only H7 is needed for the prefilter, so rounds 57-60 skip the
  ``a`` half and rounds 61-63 are not run at all.

A hit is decided exactly: the hash as a 256-bit little-endian number is <= target iff
its top word (byte-swapped H7) is below the target's top word, or equal and the rest
compares lower — that rare tie is settled with hashlib.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hcp.mining.header import (
    SHA256_IV,
    SHA256_K,
    UINT32_MAX,
    big_sigma0,
    big_sigma1,
    sha256_midstate,
    sha256_round,
    small_sigma0,
    small_sigma1,
)

logger = logging.getLogger(__name__)

Buf = Any  # an ndarray or a tensor, owned by the ops object


class ArrayOps(Protocol):
    """Elementwise uint32 operations on preallocated buffers of one fixed length."""

    n: int

    def empty(self) -> Buf: ...
    def add(self, x: Buf, y: Buf, out: Buf) -> None: ...
    def add_c(self, x: Buf, c: int, out: Buf) -> None: ...
    def xor(self, x: Buf, y: Buf, out: Buf) -> None: ...
    def and_(self, x: Buf, y: Buf, out: Buf) -> None: ...
    def copy(self, x: Buf, out: Buf) -> None: ...
    def fill(self, out: Buf, c: int) -> None: ...
    def big_sigma(self, x: Buf, out: Buf, tmp: Buf, rots: tuple[int, int, int]) -> None: ...
    def small_sigma(
        self, x: Buf, out: Buf, tmp: Buf, rots: tuple[int, int], shift: int
    ) -> None: ...
    def load_nonces(self, out: Buf, start: int) -> None: ...
    def candidates(self, h7: Buf, count: int, top: int) -> tuple[list[int], list[int]]: ...


@dataclass(frozen=True)
class Sha256dJob:
    """Everything about one 76-byte header prefix that the nonce does not change."""

    prefix: bytes
    midstate: tuple[int, ...]
    a3: int  # after round 3: a = W3 + a3, e = W3 + e3
    e3: int
    rest3: tuple[int, ...]  # b, c, d, f, g, h after round 3
    carry3: int  # b ^ c after round 3, seeds the Maj trick
    w: tuple[int, ...]  # W0..W15 of the second block (W3, the nonce, is a placeholder)

    @classmethod
    def from_prefix(cls, prefix: bytes) -> Sha256dJob:
        mid = sha256_midstate(prefix[:64])
        tail = [int.from_bytes(prefix[64 + 4 * i : 68 + 4 * i], "big") for i in range(3)]
        w = tuple(tail + [0, 0x80000000] + [0] * 10 + [640])  # 640 = 80 bytes in bits
        s = mid
        for t in range(3):
            s = sha256_round(s, (SHA256_K[t] + w[t]) & UINT32_MAX)
        a, b, c, d, e, f, g, h = s
        t1 = (h + big_sigma1(e) + (g ^ (e & (f ^ g))) + SHA256_K[3]) & UINT32_MAX
        t2 = (big_sigma0(a) + ((a & b) | (c & (a | b)))) & UINT32_MAX
        return cls(
            prefix, mid, (t1 + t2) & UINT32_MAX, (d + t1) & UINT32_MAX, (a, b, c, e, f, g), a ^ b, w
        )


def _second_hash_round0() -> tuple[int, int]:
    """Constant parts of round 0 of the second hash (state = IV, W0 = digest word 0)."""
    a, b, c, d, e, f, g, h = SHA256_IV
    t1 = (h + big_sigma1(e) + (g ^ (e & (f ^ g))) + SHA256_K[0]) & UINT32_MAX
    t2 = (big_sigma0(a) + ((a & b) | (c & (a | b)))) & UINT32_MAX
    return (t1 + t2) & UINT32_MAX, (d + t1) & UINT32_MAX


_H2_A1, _H2_E1 = _second_hash_round0()
_H2_W = (0x80000000, 0, 0, 0, 0, 0, 0, 256)  # W8..W15 of the 32-byte second message


class Sha256dKernel:
    """SHA-256d of ``ops.n`` consecutive nonces per ``run``; returns the H7 buffer."""

    def __init__(self, ops: ArrayOps) -> None:
        self.ops = ops
        new = ops.empty
        self._ring = [new() for _ in range(16)]  # W[t] lives in slot t % 16 when it varies
        self._state = [new() for _ in range(8)]
        self._t1, self._t2, self._t3 = new(), new(), new()
        self._carry = [new(), new()]  # a ^ b of the previous round (ping-pong)
        self._ci = 0

    def _schedule(self, w: list[Any], t: int) -> None:
        o = self.ops
        out = self._ring[t & 15]
        const = 0
        arrays: list[Buf] = []
        # W[t-16] goes first: it may already sit in ``out`` and must be read before overwrite.
        for x in (w[t - 16], w[t - 7]):
            if isinstance(x, int):
                const += x
            else:
                arrays.append(x)
        x = w[t - 2]
        if isinstance(x, int):
            const += small_sigma1(x)
        else:
            o.small_sigma(x, self._t1, self._t3, (17, 19), 10)
            arrays.append(self._t1)
        x = w[t - 15]
        if isinstance(x, int):
            const += small_sigma0(x)
        else:
            o.small_sigma(x, self._t2, self._t3, (7, 18), 3)
            arrays.append(self._t2)
        const &= UINT32_MAX
        if not arrays:
            w.append(const)
            return
        if len(arrays) == 1:
            if const:
                o.add_c(arrays[0], const, out)
            else:
                o.copy(arrays[0], out)
        else:
            o.add(arrays[0], arrays[1], out)
            for x in arrays[2:]:
                o.add(out, x, out)
            if const:
                o.add_c(out, const, out)
        w.append(out)

    def _round(self, s: list[Buf], t: int, wt: Any, need_a: bool = True) -> list[Buf]:
        o = self.ops
        a, b, c, d, e, f, g, h = s
        t1, t2, t3 = self._t1, self._t2, self._t3
        # T1 accumulates into h's buffer: h is dead after this round.
        o.big_sigma(e, t1, t3, (6, 11, 25))
        o.add(h, t1, h)
        o.xor(f, g, t1)  # Ch(e, f, g) = g ^ (e & (f ^ g))
        o.and_(t1, e, t1)
        o.xor(t1, g, t1)
        o.add(h, t1, h)
        if isinstance(wt, int):
            o.add_c(h, (SHA256_K[t] + wt) & UINT32_MAX, h)
        else:
            o.add_c(h, SHA256_K[t], h)
            o.add(h, wt, h)
        o.add(d, h, d)  # new e = d + T1, written over d (dead after this round)
        if need_a:
            o.big_sigma(a, t1, t3, (2, 13, 22))
            o.add(h, t1, h)
            # Maj(a, b, c) = b ^ ((a ^ b) & (b ^ c)); b ^ c is last round's a ^ b.
            prev, nxt = self._carry[self._ci], self._carry[self._ci ^ 1]
            o.xor(a, b, nxt)
            o.and_(nxt, prev, t2)
            o.xor(t2, b, t2)
            o.add(h, t2, h)
            self._ci ^= 1
        return [h, a, b, c, d, e, f, g]

    def run(
        self, job: Sha256dJob, start: int, cancel: Callable[[], bool] | None = None
    ) -> Buf | None:
        """H7 of nonces ``start ..``; None if ``cancel()`` turned true (checked every round)."""
        o = self.ops
        ring, st = self._ring, self._state
        # --- first hash: second block of the header, from round 3 on ---
        w3 = ring[3]
        o.load_nonces(w3, start)
        o.add_c(w3, job.a3, st[0])
        o.add_c(w3, job.e3, st[4])
        for buf, val in zip((st[1], st[2], st[3], st[5], st[6], st[7]), job.rest3):
            o.fill(buf, val)
        self._ci = 0
        o.fill(self._carry[0], job.carry3)
        w: list[Any] = list(job.w)
        w[3] = w3
        s = list(st)
        for t in range(4, 64):
            if cancel is not None and cancel():
                return None
            if t >= 16:
                self._schedule(w, t)
            s = self._round(s, t, w[t])
        for i in range(8):  # digest words become W0..W7 of the second hash
            o.add_c(s[i], job.midstate[i], ring[i])
        # --- second hash over the 32-byte digest ---
        w = ring[:8] + list(_H2_W)
        o.add_c(ring[0], _H2_A1, st[0])
        o.add_c(ring[0], _H2_E1, st[4])
        iv = SHA256_IV
        for buf, val in zip(
            (st[1], st[2], st[3], st[5], st[6], st[7]), (iv[0], iv[1], iv[2], iv[4], iv[5], iv[6])
        ):
            o.fill(buf, val)
        self._ci = 0
        o.fill(self._carry[0], iv[0] ^ iv[1])
        s = list(st)
        for t in range(1, 61):
            if cancel is not None and cancel():
                return None
            if t >= 16:
                self._schedule(w, t)
            s = self._round(s, t, w[t], need_a=t <= 56)
        h7 = s[4]  # e after round 60 is h after round 63
        o.add_c(h7, iv[7], h7)
        return h7


class NumpyOps:
    """uint32 ufuncs with ``out=``: wrap-around adds for free, no temporaries."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._arange = np.arange(n, dtype=np.uint32)
        self._sh = [np.uint32(k) for k in range(33)]
        self._consts: dict[int, np.uint32] = {}
        # Plain ufuncs, not wrappers: a batch makes ~5,400 calls, each Python frame counts.
        self.add = np.add
        self.xor = np.bitwise_xor
        self.and_ = np.bitwise_and

    def empty(self) -> np.ndarray:
        return np.empty(self.n, dtype=np.uint32)

    def add_c(self, x: np.ndarray, c: int, out: np.ndarray) -> None:
        # A prebuilt np.uint32 is ~2x cheaper for the ufunc than a Python int; a job has
        # only a few hundred distinct constants, so the cache stays small.
        s = self._consts.get(c)
        if s is None:
            if len(self._consts) > 4096:
                self._consts.clear()
            s = self._consts[c] = np.uint32(c)
        np.add(x, s, out)

    def copy(self, x: np.ndarray, out: np.ndarray) -> None:
        np.copyto(out, x)

    def fill(self, out: np.ndarray, c: int) -> None:
        out.fill(c)

    def big_sigma(
        self, x: np.ndarray, out: np.ndarray, tmp: np.ndarray, rots: tuple[int, int, int]
    ) -> None:
        sh, rs, ls, xor = self._sh, np.right_shift, np.left_shift, np.bitwise_xor
        r1, r2, r3 = rots
        rs(x, sh[r1], out)
        ls(x, sh[32 - r1], tmp)
        xor(out, tmp, out)
        for r in (r2, r3):
            rs(x, sh[r], tmp)
            xor(out, tmp, out)
            ls(x, sh[32 - r], tmp)
            xor(out, tmp, out)

    def small_sigma(
        self, x: np.ndarray, out: np.ndarray, tmp: np.ndarray, rots: tuple[int, int], shift: int
    ) -> None:
        sh, rs, ls, xor = self._sh, np.right_shift, np.left_shift, np.bitwise_xor
        rs(x, sh[shift], out)
        for r in rots:
            rs(x, sh[r], tmp)
            xor(out, tmp, out)
            ls(x, sh[32 - r], tmp)
            xor(out, tmp, out)

    def load_nonces(self, out: np.ndarray, start: int) -> None:
        # W3 is the nonce's little-endian bytes read big-endian: a byte swap.
        np.add(self._arange, np.uint32(start), out)  # wraps past 2^32; those lanes are ignored
        out.byteswap(inplace=True)

    def candidates(self, h7: np.ndarray, count: int, top: int) -> tuple[list[int], list[int]]:
        h = h7[:count]
        h.byteswap(inplace=True)  # the hash's most significant LE word
        idx = np.flatnonzero(h <= np.uint32(top))
        if idx.size == 0:
            return [], []
        vals = h[idx]
        return idx[vals < top].tolist(), idx[vals == top].tolist()
