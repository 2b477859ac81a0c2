"""Every backend finds the real nonce of real blocks and agrees with hashlib exactly."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from hcp.errors import MiningError
from hcp.mining import (
    GENESIS_HEADER,
    NONCE_SPACE,
    BlockHeader,
    HashlibBackend,
    MiningBackend,
    NumbaBackend,
    NumpyBackend,
    SearchCancelled,
    TorchBackend,
    bits_to_target,
    make_backend,
    share_target,
)
from hcp.mining import backends as backends_mod

SAMPLES = json.loads((Path(__file__).parents[1] / "data" / "btc_headers_sample.json").read_text())
IDS = [f"h{row['height']}" for row in SAMPLES]

# Small batches so the tests cross batch boundaries and end on partial batches;
# scalar_below=0 forces the vector kernel even for short ranges.
FACTORIES: dict[str, Callable[[], MiningBackend]] = {
    "hashlib": HashlibBackend,
    "numpy": lambda: NumpyBackend(batch_size=1024, scalar_below=0),
    "numpy-2threads": lambda: NumpyBackend(batch_size=1024, threads=2, scalar_below=0),
    "torch-cpu": lambda: TorchBackend(device="cpu", batch_size=1024, scalar_below=0),
    "numba": lambda: NumbaBackend(batch_size=1024, scalar_below=0),
}
VECTOR = ["numpy", "numpy-2threads", "torch-cpu", "numba"]
_cache: dict[str, MiningBackend] = {}


def backend(name: str) -> MiningBackend:
    if name not in _cache:
        _cache[name] = FACTORIES[name]()
    return _cache[name]


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _nonce_window(nonce: int, radius: int = 1000) -> tuple[int, int]:
    start = max(0, nonce - radius)
    end = min(NONCE_SPACE, nonce + radius + 1)
    return start, end - start


def _assert_finds_real_nonces(b: MiningBackend) -> None:
    for row in SAMPLES:
        header = bytes.fromhex(row["header_hex"])
        start, count = _nonce_window(row["nonce"])
        assert b.search(header, start, count, bits_to_target(row["bits"])) == [row["nonce"]], row[
            "height"
        ]


@pytest.mark.parametrize("name", list(FACTORIES))
def test_backend_finds_the_real_nonce_of_every_sample_block(name: str) -> None:
    _assert_finds_real_nonces(backend(name))


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
def test_torch_cuda_finds_real_nonces_and_matches_hashlib() -> None:
    b = TorchBackend(device="cuda", batch_size=1 << 16, scalar_below=0)
    b.warm()
    _assert_finds_real_nonces(b)
    header = bytes.fromhex(SAMPLES[5]["header_hex"])
    target = share_target(2**-26)
    assert b.search(header, 0, 100_000, target) == HashlibBackend().search(
        header, 0, 100_000, target
    )


# Difficulty 2^-26 means about one hash in 64 is a share: enough hits to compare sets.
EASY = share_target(2**-26)


@pytest.mark.parametrize("name", VECTOR)
@pytest.mark.parametrize(
    "start,count", [(0, 3000), (NONCE_SPACE - 2500, 2500), (123_456_789, 1), (1_000_000, 9000)]
)
def test_vector_backends_match_hashlib_at_an_easy_target(name: str, start: int, count: int) -> None:
    header = bytes.fromhex(SAMPLES[7]["header_hex"])
    expected = backend("hashlib").search(header, start, count, EASY)
    assert backend(name).search(header, start, count, EASY) == expected
    if count > 1000:
        assert 10 < len(expected) < count // 10  # the comparison is not vacuous


@pytest.mark.parametrize("name", list(FACTORIES))
def test_target_boundary_is_inclusive(name: str) -> None:
    # The target equal to the block's own hash value takes the exact "tie" path.
    row = SAMPLES[4]
    header = BlockHeader.from_hex(row["header_hex"])
    value = int.from_bytes(header.hash(), "little")
    start, count = _nonce_window(row["nonce"], 300)
    assert backend(name).search(header.serialize(), start, count, value) == [row["nonce"]]
    assert backend(name).search(header.serialize(), start, count, value - 1) == []


@pytest.mark.parametrize("name", list(FACTORIES))
def test_whole_space_target_and_empty_range(name: str) -> None:
    header = GENESIS_HEADER.serialize()
    assert backend(name).search(header, 10, 300, (1 << 256) - 1) == list(range(10, 310))
    assert backend(name).search(header, 10, 0, EASY) == []


BAD_SEARCHES = [
    (bytes(79), 0, 10, EASY),
    ("00" * 80, 0, 10, EASY),
    (bytes(80), -1, 10, EASY),
    (bytes(80), NONCE_SPACE, 1, EASY),
    (bytes(80), 0, -1, EASY),
    (bytes(80), NONCE_SPACE - 5, 6, EASY),
    (bytes(80), 1.0, 10, EASY),
    (bytes(80), 0, True, EASY),
    (bytes(80), 0, 10, 0),
    (bytes(80), 0, 10, 1 << 256),
]


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("args", BAD_SEARCHES, ids=[str(i) for i in range(len(BAD_SEARCHES))])
def test_bad_search_inputs_raise_mining_error(name: str, args: tuple) -> None:
    with pytest.raises(MiningError):
        backend(name).search(*args)


def test_range_ending_exactly_at_the_nonce_space_end_is_allowed() -> None:
    assert backend("numpy").search(bytes(80), NONCE_SPACE - 5, 5, 1) == []


@pytest.mark.parametrize("name", ["hashlib", "numpy", "torch-cpu", "numba"])
def test_warm_self_test_and_protocol(name: str) -> None:
    b = backend(name)
    b.warm()
    assert isinstance(b, MiningBackend)
    assert b.device == "cpu"
    assert getattr(b, "verified", True)


def test_make_backend_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_backend("hashlib").name == "hashlib"
    assert isinstance(make_backend("numpy"), NumpyBackend)
    torch_cpu = make_backend("torch-cpu", batch_size=1024)
    assert (torch_cpu.name, torch_cpu.device) == ("torch-cpu", "cpu")
    numba = make_backend("numba", batch_size=2048)
    assert (numba.name, numba.device, numba.batch_size) == ("numba", "cpu", 2048)
    assert isinstance(numba, NumbaBackend)
    monkeypatch.setattr(backends_mod, "cuda_available", lambda: False)
    assert make_backend().name == "numba"
    monkeypatch.setattr(backends_mod, "numba_available", lambda: False)
    assert make_backend().name == "numpy"
    monkeypatch.setattr(backends_mod, "cuda_available", lambda: True)
    monkeypatch.setattr(backends_mod, "TorchBackend", lambda device, **kw: f"torch on {device}")
    assert make_backend("auto") == "torch on cuda"
    with pytest.raises(MiningError):
        make_backend("asic")


@pytest.mark.skipif(_cuda(), reason="only meaningful without CUDA")
def test_cuda_backend_without_cuda_is_a_mining_error() -> None:
    with pytest.raises(MiningError):
        TorchBackend(device="cuda")


def test_numpy_path_imports_neither_torch_nor_numba_nor_ray() -> None:
    code = (
        "import sys, hcp.mining as m\n"
        "b = m.NumpyBackend(batch_size=1024, scalar_below=0)\n"
        "h = m.GENESIS_HEADER\n"
        "assert b.search(h.serialize(), h.nonce - 10, 20, m.GENESIS_TARGET) == [h.nonce]\n"
        "assert not {'torch', 'numba', 'ray'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --- cancellation ---------------------------------------------------------------------


class CancelAfter:
    """A cancel callable that turns true on its ``n``-th call (i.e. mid-search)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


@pytest.mark.parametrize("name", list(FACTORIES))
def test_a_set_cancel_abandons_the_search_and_an_unset_one_changes_nothing(name: str) -> None:
    b = backend(name)
    header = bytes.fromhex(SAMPLES[7]["header_hex"])
    stop = threading.Event()
    expected = b.search(header, 5000, 3000, EASY)
    assert b.search(header, 5000, 3000, EASY, cancel=stop) == expected
    assert b.search(header, 5000, 3000, EASY, cancel=lambda: False) == expected
    stop.set()
    with pytest.raises(SearchCancelled) as info:
        b.search(header, 5000, 3000, EASY, cancel=stop)
    assert 5000 <= info.value.at < 8000
    assert b.search(header, 5000, 3000, EASY) == expected  # nothing left behind


@pytest.mark.parametrize("name", ["numpy", "numpy-2threads", "torch-cpu"])
def test_array_kernels_cancel_between_rounds(name: str) -> None:
    b = backend(name)
    header = bytes.fromhex(SAMPLES[7]["header_hex"])
    cancel = CancelAfter(30)  # inside the first kernel run: ~120 rounds per run
    with pytest.raises(SearchCancelled):
        b.search(header, 0, 5000, EASY, cancel=cancel)  # 5000: both threads of numpy-2threads
    assert cancel.calls < 100
    # The abandoned run leaves nothing in the buffers that a later search would see.
    assert b.search(header, 0, 5000, EASY) == backend("hashlib").search(header, 0, 5000, EASY)


def test_hashlib_checks_cancel_every_1024_nonces() -> None:
    cancel = CancelAfter(2)
    with pytest.raises(SearchCancelled) as info:
        HashlibBackend().search(GENESIS_HEADER.serialize(), 0, 5000, EASY, cancel=cancel)
    assert info.value.at == 1024


@pytest.mark.parametrize("bad", [1, "yes", object()])
def test_cancel_must_be_an_event_or_a_callable(bad: object) -> None:
    with pytest.raises(MiningError):
        backend("numpy").search(GENESIS_HEADER.serialize(), 0, 10, EASY, cancel=bad)


# --- numba specifics --------------------------------------------------------------------


def test_numba_kernel_releases_the_gil_and_handles_long_ranges() -> None:
    from hcp.mining import sha256_numba

    b = backend("numba")
    b.warm()
    assert sha256_numba.scan.dispatcher.targetoptions["nogil"] is True
    # A range of several kernel calls (batch_size 1024) ending at the nonce-space end.
    header = bytes.fromhex(SAMPLES[2]["header_hex"])
    start, count = NONCE_SPACE - 4500, 4500
    assert b.search(header, start, count, EASY) == backend("hashlib").search(
        header, start, count, EASY
    )


def _add(x, y):  # type: ignore[no-untyped-def]
    return x + y


class _FailingFirstCall:
    """Stands in for a numba dispatcher whose first call fails in its disk cache."""

    def __init__(self, compiled: bool) -> None:
        self.signatures = ["(int64, int64)"] if compiled else []
        self.calls = 0

    def __call__(self, x: int, y: int) -> int:
        self.calls += 1
        if self.calls == 1:
            raise OSError(28, "No space left on device")
        return x + y


@pytest.mark.parametrize("compiled", [True, False])
def test_numba_cache_failure_on_first_call_falls_back(compiled: bool) -> None:
    from hcp.mining.sha256_numba import CachedKernel

    kernel = CachedKernel(_add, cache=False)
    failing = _FailingFirstCall(compiled)
    kernel.dispatcher = failing
    assert kernel(2, 3) == 5
    if compiled:  # the cache write failed after compiling: the same code is reused
        assert kernel.dispatcher is failing and failing.calls == 2
    else:  # nothing compiled: rebuilt without a disk cache
        assert kernel.dispatcher is not failing and not kernel.dispatcher.stats.cache_path
    assert kernel(4, 5) == 9


def test_numba_without_a_usable_cache_dir_compiles_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hcp.mining import sha256_numba

    real_njit = sha256_numba.njit

    def njit(**options: object) -> object:
        if options.get("cache"):
            raise RuntimeError("cannot cache function '_add': no locator available")
        return real_njit(**options)

    monkeypatch.setattr(sha256_numba, "njit", njit)
    kernel = sha256_numba.CachedKernel(_add)
    assert kernel(20, 22) == 42
    assert kernel.dispatcher.targetoptions["nogil"] is True
