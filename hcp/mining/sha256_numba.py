"""SHA-256d over a nonce range, compiled with numba: the CPU backend's kernel.

Same algorithm and shortcuts as ``sha256_numpy`` (midstate of the first 64 header bytes
once per header; rounds 0-2 and the constant half of round 3 folded per header; schedule
terms built only from constant words folded into constants; the second hash stops at
round 60 and computes only what H7 needs), but per nonce in machine code instead of
~5,400 numpy calls per batch.

The per-nonce body is spelled out round by round (mechanically written; the tests hold it
to hashlib on real blocks). That is deliberate: a body with no inner loops lets LLVM vectorise the
nonce loop itself, 8 nonces per AVX2 register: ~1.6x the speed of the same rounds written
as loops over lanes. Naming: ``a{t}`` / ``e{t}`` are the working variables a / e entering
round t of the first hash (``a{t-1}``..``a{t-3}`` are b..d, ``e{t-1}``..``e{t-3}`` are
f..h); ``ya{t+3}`` / ``ye{t+3}`` are the same for the second hash, whose IV is
``ya3..ya0`` / ``ye3..ye0``. ``w{t}`` / ``v{t}`` are the message schedules.

Values are numba ``uint32``; numba widens ``uint32 op uint32`` to 64 bits, so every sum is
wrapped back with ``U(...)`` (which LLVM turns into plain 32-bit arithmetic).

The kernel is compiled with ``nogil=True`` (a mining thread never holds the GIL while
hashing) and ``cache=True`` (compiled once, ~11 s on a 2-core VM, then loaded from
``__pycache__`` in ~0.6 s). The disk cache is only an optimisation: when it cannot be used,
the kernel is compiled in memory instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

from hcp.errors import MiningError
from hcp.mining.search import SearchCancelled, verify_nonce
from hcp.mining.sha256_numpy import Sha256dJob

logger = logging.getLogger(__name__)

U = np.uint32


def _compile(py_func: Callable[..., Any], cache: bool = True) -> Any:
    """``njit(nogil=True)`` with the on-disk cache when a cache directory is usable."""
    if cache:
        try:
            return njit(cache=True, nogil=True)(py_func)
        except RuntimeError:  # numba: "cannot cache function ...: no locator available"
            logger.warning("numba cache unavailable for %s; compiling in memory", py_func.__name__)
    return njit(nogil=True)(py_func)


@njit
def _rotr(x, n):  # type: ignore[no-untyped-def]
    return U((x >> n) | (x << (32 - n)))


@njit
def _bswap(x):  # type: ignore[no-untyped-def]
    return U(((x & 0xFF) << 24) | ((x & 0xFF00) << 8) | ((x >> 8) & 0xFF00) | ((x >> 24) & 0xFF))


@njit
def _s0(x):  # type: ignore[no-untyped-def]
    return U(_rotr(x, 7) ^ _rotr(x, 18) ^ (x >> 3))


@njit
def _s1(x):  # type: ignore[no-untyped-def]
    return U(_rotr(x, 17) ^ _rotr(x, 19) ^ (x >> 10))


@njit
def _rnd(a, b, c, d, e, f, g, h, kw):  # type: ignore[no-untyped-def]
    """One round; ``kw`` is K[t] + W[t]. Returns (new e, new a)."""
    s1 = U(_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25))
    ch = U(g ^ U(e & U(f ^ g)))
    t1 = U(U(U(h + s1) + ch) + kw)
    s0 = U(_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22))
    maj = U(U(a & b) | U(c & U(a | b)))
    return U(d + t1), U(t1 + U(s0 + maj))


@njit
def _rnd_e(e, f, g, h, d, kw):  # type: ignore[no-untyped-def]
    """A round whose new ``a`` is never used (the second hash's rounds 57-60)."""
    s1 = U(_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25))
    ch = U(g ^ U(e & U(f ^ g)))
    return U(d + U(U(U(h + s1) + ch) + kw))


def _scan_py(params, start, count, top, words, ties):  # type: ignore[no-untyped-def]
    """Hash nonces ``start .. start+count-1``; returns (hits, ties).

    ``params`` (uint32[19]): midstate, the round-3 constants of ``Sha256dJob`` (a3, e3,
    then b, c, d, f, g, h after round 3), W0..W2. ``words`` / ``ties`` are uint32 scratch
    of at least ``count``. On return ``words[:hits]`` are the nonces whose hash's top word
    is below ``top`` (sure hits) and ``ties[:ties]`` those whose top word equals it (the
    caller settles them exactly).
    """
    m0, m1, m2, m3 = params[0], params[1], params[2], params[3]
    m4, m5, m6, m7 = params[4], params[5], params[6], params[7]
    ka, ke, a3, a2 = params[8], params[9], params[10], params[11]
    a1, e3, e2, e1 = params[12], params[13], params[14], params[15]
    w0, w1, w2 = params[16], params[17], params[18]
    w16 = U(_s0(w1) + w0)  # the nonce-independent schedule words
    w17 = U(U(_s0(w2) + w1) + 0x1100000)
    for i in range(count):  # no branches, no inner loops: LLVM vectorises this loop
        w3 = _bswap(start + i)  # the nonce, read big-endian
        a4 = U(w3 + ka)
        e4 = U(w3 + ke)
        w18 = U(U(_s1(w16) + _s0(w3)) + w2)
        w19 = U(U(_s1(w17) + w3) + 0x11002000)
        w20 = U(_s1(w18) + 0x80000000)
        w21 = U(_s1(w19))
        w22 = U(_s1(w20) + 0x280)
        w23 = U(_s1(w21) + w16)
        w24 = U(_s1(w22) + w17)
        w25 = U(_s1(w23) + w18)
        w26 = U(_s1(w24) + w19)
        w27 = U(_s1(w25) + w20)
        w28 = U(_s1(w26) + w21)
        w29 = U(_s1(w27) + w22)
        w30 = U(U(_s1(w28) + w23) + 0xA00055)
        w31 = U(U(U(_s1(w29) + w24) + _s0(w16)) + 0x280)
        w32 = U(U(U(_s1(w30) + w25) + _s0(w17)) + w16)
        w33 = U(U(U(_s1(w31) + w26) + _s0(w18)) + w17)
        w34 = U(U(U(_s1(w32) + w27) + _s0(w19)) + w18)
        w35 = U(U(U(_s1(w33) + w28) + _s0(w20)) + w19)
        w36 = U(U(U(_s1(w34) + w29) + _s0(w21)) + w20)
        w37 = U(U(U(_s1(w35) + w30) + _s0(w22)) + w21)
        w38 = U(U(U(_s1(w36) + w31) + _s0(w23)) + w22)
        w39 = U(U(U(_s1(w37) + w32) + _s0(w24)) + w23)
        w40 = U(U(U(_s1(w38) + w33) + _s0(w25)) + w24)
        w41 = U(U(U(_s1(w39) + w34) + _s0(w26)) + w25)
        w42 = U(U(U(_s1(w40) + w35) + _s0(w27)) + w26)
        w43 = U(U(U(_s1(w41) + w36) + _s0(w28)) + w27)
        w44 = U(U(U(_s1(w42) + w37) + _s0(w29)) + w28)
        w45 = U(U(U(_s1(w43) + w38) + _s0(w30)) + w29)
        w46 = U(U(U(_s1(w44) + w39) + _s0(w31)) + w30)
        w47 = U(U(U(_s1(w45) + w40) + _s0(w32)) + w31)
        w48 = U(U(U(_s1(w46) + w41) + _s0(w33)) + w32)
        w49 = U(U(U(_s1(w47) + w42) + _s0(w34)) + w33)
        w50 = U(U(U(_s1(w48) + w43) + _s0(w35)) + w34)
        w51 = U(U(U(_s1(w49) + w44) + _s0(w36)) + w35)
        w52 = U(U(U(_s1(w50) + w45) + _s0(w37)) + w36)
        w53 = U(U(U(_s1(w51) + w46) + _s0(w38)) + w37)
        w54 = U(U(U(_s1(w52) + w47) + _s0(w39)) + w38)
        w55 = U(U(U(_s1(w53) + w48) + _s0(w40)) + w39)
        w56 = U(U(U(_s1(w54) + w49) + _s0(w41)) + w40)
        w57 = U(U(U(_s1(w55) + w50) + _s0(w42)) + w41)
        w58 = U(U(U(_s1(w56) + w51) + _s0(w43)) + w42)
        w59 = U(U(U(_s1(w57) + w52) + _s0(w44)) + w43)
        w60 = U(U(U(_s1(w58) + w53) + _s0(w45)) + w44)
        w61 = U(U(U(_s1(w59) + w54) + _s0(w46)) + w45)
        w62 = U(U(U(_s1(w60) + w55) + _s0(w47)) + w46)
        w63 = U(U(U(_s1(w61) + w56) + _s0(w48)) + w47)
        e5, a5 = _rnd(a4, a3, a2, a1, e4, e3, e2, e1, U(0xB956C25B))
        e6, a6 = _rnd(a5, a4, a3, a2, e5, e4, e3, e2, U(0x59F111F1))
        e7, a7 = _rnd(a6, a5, a4, a3, e6, e5, e4, e3, U(0x923F82A4))
        e8, a8 = _rnd(a7, a6, a5, a4, e7, e6, e5, e4, U(0xAB1C5ED5))
        e9, a9 = _rnd(a8, a7, a6, a5, e8, e7, e6, e5, U(0xD807AA98))
        e10, a10 = _rnd(a9, a8, a7, a6, e9, e8, e7, e6, U(0x12835B01))
        e11, a11 = _rnd(a10, a9, a8, a7, e10, e9, e8, e7, U(0x243185BE))
        e12, a12 = _rnd(a11, a10, a9, a8, e11, e10, e9, e8, U(0x550C7DC3))
        e13, a13 = _rnd(a12, a11, a10, a9, e12, e11, e10, e9, U(0x72BE5D74))
        e14, a14 = _rnd(a13, a12, a11, a10, e13, e12, e11, e10, U(0x80DEB1FE))
        e15, a15 = _rnd(a14, a13, a12, a11, e14, e13, e12, e11, U(0x9BDC06A7))
        e16, a16 = _rnd(a15, a14, a13, a12, e15, e14, e13, e12, U(0xC19BF3F4))
        e17, a17 = _rnd(a16, a15, a14, a13, e16, e15, e14, e13, U(0xE49B69C1 + w16))
        e18, a18 = _rnd(a17, a16, a15, a14, e17, e16, e15, e14, U(0xEFBE4786 + w17))
        e19, a19 = _rnd(a18, a17, a16, a15, e18, e17, e16, e15, U(0xFC19DC6 + w18))
        e20, a20 = _rnd(a19, a18, a17, a16, e19, e18, e17, e16, U(0x240CA1CC + w19))
        e21, a21 = _rnd(a20, a19, a18, a17, e20, e19, e18, e17, U(0x2DE92C6F + w20))
        e22, a22 = _rnd(a21, a20, a19, a18, e21, e20, e19, e18, U(0x4A7484AA + w21))
        e23, a23 = _rnd(a22, a21, a20, a19, e22, e21, e20, e19, U(0x5CB0A9DC + w22))
        e24, a24 = _rnd(a23, a22, a21, a20, e23, e22, e21, e20, U(0x76F988DA + w23))
        e25, a25 = _rnd(a24, a23, a22, a21, e24, e23, e22, e21, U(0x983E5152 + w24))
        e26, a26 = _rnd(a25, a24, a23, a22, e25, e24, e23, e22, U(0xA831C66D + w25))
        e27, a27 = _rnd(a26, a25, a24, a23, e26, e25, e24, e23, U(0xB00327C8 + w26))
        e28, a28 = _rnd(a27, a26, a25, a24, e27, e26, e25, e24, U(0xBF597FC7 + w27))
        e29, a29 = _rnd(a28, a27, a26, a25, e28, e27, e26, e25, U(0xC6E00BF3 + w28))
        e30, a30 = _rnd(a29, a28, a27, a26, e29, e28, e27, e26, U(0xD5A79147 + w29))
        e31, a31 = _rnd(a30, a29, a28, a27, e30, e29, e28, e27, U(0x6CA6351 + w30))
        e32, a32 = _rnd(a31, a30, a29, a28, e31, e30, e29, e28, U(0x14292967 + w31))
        e33, a33 = _rnd(a32, a31, a30, a29, e32, e31, e30, e29, U(0x27B70A85 + w32))
        e34, a34 = _rnd(a33, a32, a31, a30, e33, e32, e31, e30, U(0x2E1B2138 + w33))
        e35, a35 = _rnd(a34, a33, a32, a31, e34, e33, e32, e31, U(0x4D2C6DFC + w34))
        e36, a36 = _rnd(a35, a34, a33, a32, e35, e34, e33, e32, U(0x53380D13 + w35))
        e37, a37 = _rnd(a36, a35, a34, a33, e36, e35, e34, e33, U(0x650A7354 + w36))
        e38, a38 = _rnd(a37, a36, a35, a34, e37, e36, e35, e34, U(0x766A0ABB + w37))
        e39, a39 = _rnd(a38, a37, a36, a35, e38, e37, e36, e35, U(0x81C2C92E + w38))
        e40, a40 = _rnd(a39, a38, a37, a36, e39, e38, e37, e36, U(0x92722C85 + w39))
        e41, a41 = _rnd(a40, a39, a38, a37, e40, e39, e38, e37, U(0xA2BFE8A1 + w40))
        e42, a42 = _rnd(a41, a40, a39, a38, e41, e40, e39, e38, U(0xA81A664B + w41))
        e43, a43 = _rnd(a42, a41, a40, a39, e42, e41, e40, e39, U(0xC24B8B70 + w42))
        e44, a44 = _rnd(a43, a42, a41, a40, e43, e42, e41, e40, U(0xC76C51A3 + w43))
        e45, a45 = _rnd(a44, a43, a42, a41, e44, e43, e42, e41, U(0xD192E819 + w44))
        e46, a46 = _rnd(a45, a44, a43, a42, e45, e44, e43, e42, U(0xD6990624 + w45))
        e47, a47 = _rnd(a46, a45, a44, a43, e46, e45, e44, e43, U(0xF40E3585 + w46))
        e48, a48 = _rnd(a47, a46, a45, a44, e47, e46, e45, e44, U(0x106AA070 + w47))
        e49, a49 = _rnd(a48, a47, a46, a45, e48, e47, e46, e45, U(0x19A4C116 + w48))
        e50, a50 = _rnd(a49, a48, a47, a46, e49, e48, e47, e46, U(0x1E376C08 + w49))
        e51, a51 = _rnd(a50, a49, a48, a47, e50, e49, e48, e47, U(0x2748774C + w50))
        e52, a52 = _rnd(a51, a50, a49, a48, e51, e50, e49, e48, U(0x34B0BCB5 + w51))
        e53, a53 = _rnd(a52, a51, a50, a49, e52, e51, e50, e49, U(0x391C0CB3 + w52))
        e54, a54 = _rnd(a53, a52, a51, a50, e53, e52, e51, e50, U(0x4ED8AA4A + w53))
        e55, a55 = _rnd(a54, a53, a52, a51, e54, e53, e52, e51, U(0x5B9CCA4F + w54))
        e56, a56 = _rnd(a55, a54, a53, a52, e55, e54, e53, e52, U(0x682E6FF3 + w55))
        e57, a57 = _rnd(a56, a55, a54, a53, e56, e55, e54, e53, U(0x748F82EE + w56))
        e58, a58 = _rnd(a57, a56, a55, a54, e57, e56, e55, e54, U(0x78A5636F + w57))
        e59, a59 = _rnd(a58, a57, a56, a55, e58, e57, e56, e55, U(0x84C87814 + w58))
        e60, a60 = _rnd(a59, a58, a57, a56, e59, e58, e57, e56, U(0x8CC70208 + w59))
        e61, a61 = _rnd(a60, a59, a58, a57, e60, e59, e58, e57, U(0x90BEFFFA + w60))
        e62, a62 = _rnd(a61, a60, a59, a58, e61, e60, e59, e58, U(0xA4506CEB + w61))
        e63, a63 = _rnd(a62, a61, a60, a59, e62, e61, e60, e59, U(0xBEF9A3F7 + w62))
        e64, a64 = _rnd(a63, a62, a61, a60, e63, e62, e61, e60, U(0xC67178F2 + w63))
        # digest words = W0..W7 of the second hash
        x0 = U(a64 + m0)
        x1 = U(a63 + m1)
        x2 = U(a62 + m2)
        x3 = U(a61 + m3)
        x4 = U(e64 + m4)
        x5 = U(e63 + m5)
        x6 = U(e62 + m6)
        x7 = U(e61 + m7)
        v16 = U(_s0(x1) + x0)
        v17 = U(U(_s0(x2) + x1) + 0xA00000)
        v18 = U(U(_s1(v16) + _s0(x3)) + x2)
        v19 = U(U(_s1(v17) + _s0(x4)) + x3)
        v20 = U(U(_s1(v18) + _s0(x5)) + x4)
        v21 = U(U(_s1(v19) + _s0(x6)) + x5)
        v22 = U(U(U(_s1(v20) + _s0(x7)) + x6) + 0x100)
        v23 = U(U(U(_s1(v21) + v16) + x7) + 0x11002000)
        v24 = U(U(_s1(v22) + v17) + 0x80000000)
        v25 = U(_s1(v23) + v18)
        v26 = U(_s1(v24) + v19)
        v27 = U(_s1(v25) + v20)
        v28 = U(_s1(v26) + v21)
        v29 = U(_s1(v27) + v22)
        v30 = U(U(_s1(v28) + v23) + 0x400022)
        v31 = U(U(U(_s1(v29) + v24) + _s0(v16)) + 0x100)
        v32 = U(U(U(_s1(v30) + v25) + _s0(v17)) + v16)
        v33 = U(U(U(_s1(v31) + v26) + _s0(v18)) + v17)
        v34 = U(U(U(_s1(v32) + v27) + _s0(v19)) + v18)
        v35 = U(U(U(_s1(v33) + v28) + _s0(v20)) + v19)
        v36 = U(U(U(_s1(v34) + v29) + _s0(v21)) + v20)
        v37 = U(U(U(_s1(v35) + v30) + _s0(v22)) + v21)
        v38 = U(U(U(_s1(v36) + v31) + _s0(v23)) + v22)
        v39 = U(U(U(_s1(v37) + v32) + _s0(v24)) + v23)
        v40 = U(U(U(_s1(v38) + v33) + _s0(v25)) + v24)
        v41 = U(U(U(_s1(v39) + v34) + _s0(v26)) + v25)
        v42 = U(U(U(_s1(v40) + v35) + _s0(v27)) + v26)
        v43 = U(U(U(_s1(v41) + v36) + _s0(v28)) + v27)
        v44 = U(U(U(_s1(v42) + v37) + _s0(v29)) + v28)
        v45 = U(U(U(_s1(v43) + v38) + _s0(v30)) + v29)
        v46 = U(U(U(_s1(v44) + v39) + _s0(v31)) + v30)
        v47 = U(U(U(_s1(v45) + v40) + _s0(v32)) + v31)
        v48 = U(U(U(_s1(v46) + v41) + _s0(v33)) + v32)
        v49 = U(U(U(_s1(v47) + v42) + _s0(v34)) + v33)
        v50 = U(U(U(_s1(v48) + v43) + _s0(v35)) + v34)
        v51 = U(U(U(_s1(v49) + v44) + _s0(v36)) + v35)
        v52 = U(U(U(_s1(v50) + v45) + _s0(v37)) + v36)
        v53 = U(U(U(_s1(v51) + v46) + _s0(v38)) + v37)
        v54 = U(U(U(_s1(v52) + v47) + _s0(v39)) + v38)
        v55 = U(U(U(_s1(v53) + v48) + _s0(v40)) + v39)
        v56 = U(U(U(_s1(v54) + v49) + _s0(v41)) + v40)
        v57 = U(U(U(_s1(v55) + v50) + _s0(v42)) + v41)
        v58 = U(U(U(_s1(v56) + v51) + _s0(v43)) + v42)
        v59 = U(U(U(_s1(v57) + v52) + _s0(v44)) + v43)
        v60 = U(U(U(_s1(v58) + v53) + _s0(v45)) + v44)
        ya3, ya2, ya1, ya0 = U(0x6A09E667), U(0xBB67AE85), U(0x3C6EF372), U(0xA54FF53A)
        ye3, ye2, ye1, ye0 = U(0x510E527F), U(0x9B05688C), U(0x1F83D9AB), U(0x5BE0CD19)
        ye4, ya4 = _rnd(ya3, ya2, ya1, ya0, ye3, ye2, ye1, ye0, U(0x428A2F98 + x0))
        ye5, ya5 = _rnd(ya4, ya3, ya2, ya1, ye4, ye3, ye2, ye1, U(0x71374491 + x1))
        ye6, ya6 = _rnd(ya5, ya4, ya3, ya2, ye5, ye4, ye3, ye2, U(0xB5C0FBCF + x2))
        ye7, ya7 = _rnd(ya6, ya5, ya4, ya3, ye6, ye5, ye4, ye3, U(0xE9B5DBA5 + x3))
        ye8, ya8 = _rnd(ya7, ya6, ya5, ya4, ye7, ye6, ye5, ye4, U(0x3956C25B + x4))
        ye9, ya9 = _rnd(ya8, ya7, ya6, ya5, ye8, ye7, ye6, ye5, U(0x59F111F1 + x5))
        ye10, ya10 = _rnd(ya9, ya8, ya7, ya6, ye9, ye8, ye7, ye6, U(0x923F82A4 + x6))
        ye11, ya11 = _rnd(ya10, ya9, ya8, ya7, ye10, ye9, ye8, ye7, U(0xAB1C5ED5 + x7))
        ye12, ya12 = _rnd(ya11, ya10, ya9, ya8, ye11, ye10, ye9, ye8, U(0x5807AA98))
        ye13, ya13 = _rnd(ya12, ya11, ya10, ya9, ye12, ye11, ye10, ye9, U(0x12835B01))
        ye14, ya14 = _rnd(ya13, ya12, ya11, ya10, ye13, ye12, ye11, ye10, U(0x243185BE))
        ye15, ya15 = _rnd(ya14, ya13, ya12, ya11, ye14, ye13, ye12, ye11, U(0x550C7DC3))
        ye16, ya16 = _rnd(ya15, ya14, ya13, ya12, ye15, ye14, ye13, ye12, U(0x72BE5D74))
        ye17, ya17 = _rnd(ya16, ya15, ya14, ya13, ye16, ye15, ye14, ye13, U(0x80DEB1FE))
        ye18, ya18 = _rnd(ya17, ya16, ya15, ya14, ye17, ye16, ye15, ye14, U(0x9BDC06A7))
        ye19, ya19 = _rnd(ya18, ya17, ya16, ya15, ye18, ye17, ye16, ye15, U(0xC19BF274))
        ye20, ya20 = _rnd(ya19, ya18, ya17, ya16, ye19, ye18, ye17, ye16, U(0xE49B69C1 + v16))
        ye21, ya21 = _rnd(ya20, ya19, ya18, ya17, ye20, ye19, ye18, ye17, U(0xEFBE4786 + v17))
        ye22, ya22 = _rnd(ya21, ya20, ya19, ya18, ye21, ye20, ye19, ye18, U(0xFC19DC6 + v18))
        ye23, ya23 = _rnd(ya22, ya21, ya20, ya19, ye22, ye21, ye20, ye19, U(0x240CA1CC + v19))
        ye24, ya24 = _rnd(ya23, ya22, ya21, ya20, ye23, ye22, ye21, ye20, U(0x2DE92C6F + v20))
        ye25, ya25 = _rnd(ya24, ya23, ya22, ya21, ye24, ye23, ye22, ye21, U(0x4A7484AA + v21))
        ye26, ya26 = _rnd(ya25, ya24, ya23, ya22, ye25, ye24, ye23, ye22, U(0x5CB0A9DC + v22))
        ye27, ya27 = _rnd(ya26, ya25, ya24, ya23, ye26, ye25, ye24, ye23, U(0x76F988DA + v23))
        ye28, ya28 = _rnd(ya27, ya26, ya25, ya24, ye27, ye26, ye25, ye24, U(0x983E5152 + v24))
        ye29, ya29 = _rnd(ya28, ya27, ya26, ya25, ye28, ye27, ye26, ye25, U(0xA831C66D + v25))
        ye30, ya30 = _rnd(ya29, ya28, ya27, ya26, ye29, ye28, ye27, ye26, U(0xB00327C8 + v26))
        ye31, ya31 = _rnd(ya30, ya29, ya28, ya27, ye30, ye29, ye28, ye27, U(0xBF597FC7 + v27))
        ye32, ya32 = _rnd(ya31, ya30, ya29, ya28, ye31, ye30, ye29, ye28, U(0xC6E00BF3 + v28))
        ye33, ya33 = _rnd(ya32, ya31, ya30, ya29, ye32, ye31, ye30, ye29, U(0xD5A79147 + v29))
        ye34, ya34 = _rnd(ya33, ya32, ya31, ya30, ye33, ye32, ye31, ye30, U(0x6CA6351 + v30))
        ye35, ya35 = _rnd(ya34, ya33, ya32, ya31, ye34, ye33, ye32, ye31, U(0x14292967 + v31))
        ye36, ya36 = _rnd(ya35, ya34, ya33, ya32, ye35, ye34, ye33, ye32, U(0x27B70A85 + v32))
        ye37, ya37 = _rnd(ya36, ya35, ya34, ya33, ye36, ye35, ye34, ye33, U(0x2E1B2138 + v33))
        ye38, ya38 = _rnd(ya37, ya36, ya35, ya34, ye37, ye36, ye35, ye34, U(0x4D2C6DFC + v34))
        ye39, ya39 = _rnd(ya38, ya37, ya36, ya35, ye38, ye37, ye36, ye35, U(0x53380D13 + v35))
        ye40, ya40 = _rnd(ya39, ya38, ya37, ya36, ye39, ye38, ye37, ye36, U(0x650A7354 + v36))
        ye41, ya41 = _rnd(ya40, ya39, ya38, ya37, ye40, ye39, ye38, ye37, U(0x766A0ABB + v37))
        ye42, ya42 = _rnd(ya41, ya40, ya39, ya38, ye41, ye40, ye39, ye38, U(0x81C2C92E + v38))
        ye43, ya43 = _rnd(ya42, ya41, ya40, ya39, ye42, ye41, ye40, ye39, U(0x92722C85 + v39))
        ye44, ya44 = _rnd(ya43, ya42, ya41, ya40, ye43, ye42, ye41, ye40, U(0xA2BFE8A1 + v40))
        ye45, ya45 = _rnd(ya44, ya43, ya42, ya41, ye44, ye43, ye42, ye41, U(0xA81A664B + v41))
        ye46, ya46 = _rnd(ya45, ya44, ya43, ya42, ye45, ye44, ye43, ye42, U(0xC24B8B70 + v42))
        ye47, ya47 = _rnd(ya46, ya45, ya44, ya43, ye46, ye45, ye44, ye43, U(0xC76C51A3 + v43))
        ye48, ya48 = _rnd(ya47, ya46, ya45, ya44, ye47, ye46, ye45, ye44, U(0xD192E819 + v44))
        ye49, ya49 = _rnd(ya48, ya47, ya46, ya45, ye48, ye47, ye46, ye45, U(0xD6990624 + v45))
        ye50, ya50 = _rnd(ya49, ya48, ya47, ya46, ye49, ye48, ye47, ye46, U(0xF40E3585 + v46))
        ye51, ya51 = _rnd(ya50, ya49, ya48, ya47, ye50, ye49, ye48, ye47, U(0x106AA070 + v47))
        ye52, ya52 = _rnd(ya51, ya50, ya49, ya48, ye51, ye50, ye49, ye48, U(0x19A4C116 + v48))
        ye53, ya53 = _rnd(ya52, ya51, ya50, ya49, ye52, ye51, ye50, ye49, U(0x1E376C08 + v49))
        ye54, ya54 = _rnd(ya53, ya52, ya51, ya50, ye53, ye52, ye51, ye50, U(0x2748774C + v50))
        ye55, ya55 = _rnd(ya54, ya53, ya52, ya51, ye54, ye53, ye52, ye51, U(0x34B0BCB5 + v51))
        ye56, ya56 = _rnd(ya55, ya54, ya53, ya52, ye55, ye54, ye53, ye52, U(0x391C0CB3 + v52))
        ye57, ya57 = _rnd(ya56, ya55, ya54, ya53, ye56, ye55, ye54, ye53, U(0x4ED8AA4A + v53))
        ye58, ya58 = _rnd(ya57, ya56, ya55, ya54, ye57, ye56, ye55, ye54, U(0x5B9CCA4F + v54))
        ye59, ya59 = _rnd(ya58, ya57, ya56, ya55, ye58, ye57, ye56, ye55, U(0x682E6FF3 + v55))
        ye60, ya60 = _rnd(ya59, ya58, ya57, ya56, ye59, ye58, ye57, ye56, U(0x748F82EE + v56))
        ye61 = _rnd_e(ye60, ye59, ye58, ye57, ya57, U(0x78A5636F + v57))
        ye62 = _rnd_e(ye61, ye60, ye59, ye58, ya58, U(0x84C87814 + v58))
        ye63 = _rnd_e(ye62, ye61, ye60, ye59, ya59, U(0x8CC70208 + v59))
        ye64 = _rnd_e(ye63, ye62, ye61, ye60, ya60, U(0x90BEFFFA + v60))
        words[i] = U(ye64 + 0x5BE0CD19)  # H7: e after round 60 is h after round 63
    hits = 0
    n_ties = 0
    for i in range(count):  # words[i] is read before words[hits <= i] is written
        word = _bswap(words[i])  # the hash's most significant little-endian word
        if word < top:
            words[hits] = start + i
            hits += 1
        elif word == top:
            ties[n_ties] = start + i
            n_ties += 1
    return hits, n_ties


class CachedKernel:
    """A numba dispatcher whose disk cache may fail without failing the kernel.

    Numba raises from the first call when writing (or reading) the cache file fails,
    e.g. on a read-only or full disk. The compiled code is fine then: the first call is
    retried, and if the dispatcher has nothing compiled, it is rebuilt without a cache.
    """

    def __init__(self, py_func: Callable[..., Any], cache: bool = True) -> None:
        self.py_func = py_func
        self.dispatcher = _compile(py_func, cache)
        self._ready = False
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        if self._ready:
            return self.dispatcher(*args)
        with self._lock:  # one first call compiles; the others wait for it
            if not self._ready:
                try:
                    out = self.dispatcher(*args)
                except Exception:
                    logger.warning(
                        "numba kernel %s failed its first call (its disk cache?); retrying",
                        self.py_func.__name__,
                        exc_info=True,
                    )
                    if not self.dispatcher.signatures:  # nothing compiled: rebuild uncached
                        self.dispatcher = _compile(self.py_func, cache=False)
                    out = self.dispatcher(*args)  # a real error raises again, here
                self._ready = True
                return out
        return self.dispatcher(*args)


scan = CachedKernel(_scan_py)


def job_params(job: Sha256dJob) -> np.ndarray:
    """The ``params`` array of ``_scan_py`` for one header prefix."""
    return np.array(job.midstate + (job.a3, job.e3) + job.rest3 + job.w[:3], dtype=np.uint32)


class NumbaSearcher:
    """Exact SHA-256d search over a nonce range with the numba kernel.

    ``batch_size`` bounds the nonces per kernel call (and the scratch it allocates);
    longer ranges run as several calls, with ``cancel`` checked before each. Nothing is
    shared between calls but the per-header constants, so searches may run on several
    threads at once (the kernel releases the GIL).
    """

    def __init__(self, batch_size: int = 1 << 16) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise MiningError("batch_size must be a positive integer", batch_size=batch_size)
        self.batch_size = batch_size
        self._job: tuple[bytes, np.ndarray] | None = None

    def params(self, prefix: bytes) -> np.ndarray:
        job = self._job  # one read: another thread may swap it meanwhile
        if job is None or job[0] != prefix:
            job = (prefix, job_params(Sha256dJob.from_prefix(prefix)))
            self._job = job
        return job[1]

    def search(
        self,
        prefix: bytes,
        start: int,
        count: int,
        target: int,
        cancel: Callable[[], bool] | None = None,
    ) -> list[int]:
        params = self.params(prefix)
        top = target >> 224
        found: list[int] = []
        size = min(self.batch_size, count)
        words = np.empty(size, dtype=np.uint32)
        ties = np.empty(size, dtype=np.uint32)
        pos, end = start, start + count
        while pos < end:
            if cancel is not None and cancel():
                raise SearchCancelled(pos)
            n = min(size, end - pos)
            hits, n_ties = scan(params, pos, n, top, words, ties)
            found.extend(words[:hits].tolist())
            if n_ties:  # top words equal: compare the whole hash (rare)
                found.extend(x for x in ties[:n_ties].tolist() if verify_nonce(prefix, x, target))
            pos += n
        found.sort()
        return found
