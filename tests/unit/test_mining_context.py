"""The mining context: cursor, shares, persistence, extranonce roll-over, health."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from hcp.errors import ContextUnavailableError, MiningError
from hcp.mining import (
    NONCE_SPACE,
    BlockHeader,
    HashlibBackend,
    MiningContext,
    MiningState,
    NumbaBackend,
    NumpyBackend,
    bits_to_target,
    difficulty_from_target,
    load_sample_headers,
    local_job_template,
    merkle_root_for,
    share_target,
)

SAMPLES = json.loads((Path(__file__).parents[1] / "data" / "btc_headers_sample.json").read_text())
TIP = BlockHeader.from_hex(SAMPLES[-1]["header_hex"])
EASY = 2**-24  # ~1 share per 256 hashes
NUMPY = NumpyBackend(batch_size=2048, scalar_below=0)
NUMBA = NumbaBackend(batch_size=1024, scalar_below=0)


def make_ctx(
    backend=NUMPY, template: BlockHeader = TIP, batch: int = 2048, difficulty: float = EASY
) -> MiningContext:
    return MiningContext(backend, template, "job-1", difficulty, batch)


def test_mine_batch_advances_cursor_and_returns_valid_shares() -> None:
    ctx = make_ctx()
    shares = ctx.mine_batch() + ctx.mine_batch()
    assert (ctx.next_nonce, ctx.hashes_done, ctx.shares_found) == (4096, 4096, len(shares))
    assert shares, "an easy target over 4096 nonces yields shares"
    for share in shares:
        header = ctx.current_header.with_nonce(share.nonce)
        assert share.hash_hex == header.hash_hex()
        assert header.meets_target(share_target(EASY))
        assert share.difficulty == pytest.approx(difficulty_from_target(int(share.hash_hex, 16)))
        assert share.difficulty >= EASY and (share.job_id, share.extranonce) == ("job-1", 0)


@pytest.mark.parametrize("backend", [NUMPY, NUMBA], ids=["numpy", "numba"])
def test_vector_and_hashlib_contexts_find_the_same_shares(backend) -> None:
    a, b = make_ctx(backend), make_ctx(HashlibBackend())
    assert a.mine_batch() == b.mine_batch()
    assert a.mine_batch() == b.mine_batch()
    assert a.snapshot() == b.snapshot()


def test_batch_nonces_is_a_read_only_view() -> None:
    ctx = make_ctx(batch=1500)
    assert ctx.batch_nonces == 1500
    with pytest.raises(AttributeError):
        ctx.batch_nonces = 10  # type: ignore[misc]


# --- cancellation ---------------------------------------------------------------------


class CancelAfter:
    """Turns true on its ``n``-th check: a switch arriving while the batch runs."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


@pytest.mark.parametrize(
    "backend", [NUMPY, NUMBA, HashlibBackend()], ids=["numpy", "numba", "hashlib"]
)
def test_a_cancelled_batch_leaves_cursor_and_counters_unchanged(backend) -> None:
    ctx, reference = make_ctx(backend), make_ctx(backend)
    first = ctx.mine_batch()
    assert first == reference.mine_batch()
    before = ctx.snapshot()
    stop = threading.Event()
    stop.set()  # the switch asked for the device before / while this batch ran
    assert ctx.mine_batch(cancel=stop) == []
    assert ctx.snapshot() == before
    # Nothing was skipped and nothing is mined twice: the next batch is the one cancelled.
    assert ctx.mine_batch() == reference.mine_batch()
    assert ctx.snapshot() == reference.snapshot()


def test_a_batch_cancelled_mid_kernel_is_mined_again_in_full() -> None:
    ctx, reference = make_ctx(), make_ctx()
    before = ctx.snapshot()
    cancel = CancelAfter(50)  # numpy checks between rounds: this lands inside the kernel
    assert ctx.mine_batch(cancel=cancel) == []
    assert cancel.calls == 50 and ctx.snapshot() == before
    shares = ctx.mine_batch(cancel=threading.Event())  # an unset event changes nothing
    assert shares and shares == reference.mine_batch()
    assert ctx.snapshot() == reference.snapshot()


def test_cancel_at_the_end_of_the_nonce_space_keeps_the_extranonce() -> None:
    ctx = make_ctx(batch=1000)
    state = MiningState("job-1", TIP.serialize().hex(), 0, NONCE_SPACE - 500, 7, 2)
    ctx.restore(state)
    assert ctx.mine_batch(cancel=lambda: True) == []
    assert ctx.snapshot() == state and ctx.current_header.merkle_root == TIP.merkle_root
    ctx.mine_batch()
    assert (ctx.extranonce, ctx.next_nonce, ctx.hashes_done) == (1, 0, 507)


def test_backends_without_cancel_run_the_batch_to_its_end() -> None:
    class Plain(HashlibBackend):  # an older backend: search() has no cancel parameter
        def search(self, header80: bytes, start_nonce: int, count: int, target: int) -> list[int]:
            return super().search(header80, start_nonce, count, target)

    ctx, reference = make_ctx(Plain(), batch=512), make_ctx(HashlibBackend(), batch=512)
    assert ctx.mine_batch(cancel=lambda: True) == reference.mine_batch()
    assert ctx.snapshot() == reference.snapshot()


def test_cancel_of_the_wrong_type_is_refused() -> None:
    ctx = make_ctx()
    with pytest.raises(MiningError):
        ctx.mine_batch(cancel=True)
    assert ctx.next_nonce == 0


def test_snapshot_restore_resumes_at_the_same_cursor_and_counters() -> None:
    ctx = make_ctx()
    for _ in range(3):
        ctx.mine_batch()
    state = ctx.snapshot()
    data = json.loads(json.dumps(state.to_dict()))  # what the DB stores
    assert MiningState.from_dict(data) == state
    resumed = make_ctx(template=BlockHeader.from_hex(SAMPLES[0]["header_hex"]), batch=2048)
    resumed.restore(data)
    assert resumed.snapshot() == state
    assert (resumed.job_id, resumed.template, resumed.next_nonce) == ("job-1", TIP, 3 * 2048)
    assert resumed.mine_batch() == ctx.mine_batch()
    assert resumed.snapshot() == ctx.snapshot()


def test_nonce_space_wrap_bumps_extranonce_and_changes_merkle_root() -> None:
    ctx = make_ctx(batch=1000)
    ctx.restore(MiningState("job-1", TIP.serialize().hex(), 0, NONCE_SPACE - 1500, 7, 0))
    ctx.mine_batch()
    assert (ctx.extranonce, ctx.next_nonce) == (0, NONCE_SPACE - 500)
    ctx.mine_batch()  # only 500 nonces were left: the batch stops at the boundary
    assert (ctx.extranonce, ctx.next_nonce, ctx.hashes_done) == (1, 0, 7 + 1500)
    assert ctx.current_header.merkle_root == merkle_root_for(TIP.merkle_root, 1) != TIP.merkle_root
    assert ctx.current_header.prev_hash == TIP.prev_hash
    shares = ctx.mine_batch()
    assert shares and all(s.extranonce == 1 for s in shares)
    assert all(ctx.current_header.with_nonce(s.nonce).hash_hex() == s.hash_hex for s in shares)
    assert ctx.snapshot().extranonce == 1


def test_merkle_root_derivation_is_deterministic() -> None:
    assert merkle_root_for(TIP.merkle_root, 0) == TIP.merkle_root
    assert merkle_root_for(TIP.merkle_root, 5) == merkle_root_for(TIP.merkle_root, 5)
    assert merkle_root_for(TIP.merkle_root, 5) != merkle_root_for(TIP.merkle_root, 6)
    with pytest.raises(MiningError):
        merkle_root_for(TIP.merkle_root, -1)


def test_context_finds_a_real_block_at_its_own_difficulty() -> None:
    row = SAMPLES[-1]
    block_difficulty = difficulty_from_target(bits_to_target(row["bits"]))
    ctx = make_ctx(difficulty=block_difficulty * 0.999)  # float rounding must not hide the block
    ctx.restore(
        MiningState("job-1", TIP.with_nonce(0).serialize().hex(), 0, row["nonce"] - 1000, 0, 0)
    )
    shares = ctx.mine_batch()
    assert [s.nonce for s in shares] == [row["nonce"]]
    assert shares[0].hash_hex == row["hash"] and shares[0].difficulty >= block_difficulty


def test_health_check_passes_on_real_backends_and_fails_on_broken_ones() -> None:
    assert make_ctx().health_check()
    assert make_ctx(HashlibBackend()).health_check()

    class Blind(HashlibBackend):
        def search(self, header80: bytes, start_nonce: int, count: int, target: int) -> list[int]:
            return []

    class Crashing(HashlibBackend):
        def search(self, header80: bytes, start_nonce: int, count: int, target: int) -> list[int]:
            raise RuntimeError("device lost")

    class Greedy(HashlibBackend):
        def search(self, header80: bytes, start_nonce: int, count: int, target: int) -> list[int]:
            return list(range(start_nonce, start_nonce + count))

    for broken in (Blind(), Crashing(), Greedy()):
        assert not make_ctx(broken).health_check()


def test_backend_returning_a_bad_nonce_is_refused() -> None:
    class Liar(HashlibBackend):
        def search(self, header80: bytes, start_nonce: int, count: int, target: int) -> list[int]:
            return [start_nonce]

    with pytest.raises(ContextUnavailableError):
        make_ctx(Liar(), difficulty=1.0).mine_batch()


@pytest.mark.parametrize(
    "kwargs", [{"difficulty": 0}, {"difficulty": -2.0}, {"batch": 0}, {"batch": NONCE_SPACE + 1}]
)
def test_bad_context_arguments(kwargs: dict) -> None:
    with pytest.raises(MiningError):
        make_ctx(**kwargs)
    with pytest.raises(MiningError):
        MiningContext(NUMPY, TIP, "", 1.0, 10)


@pytest.mark.parametrize(
    "change",
    [
        {"job_id": ""},
        {"template_hex": "00" * 79},
        {"template_hex": "zz" * 80},
        {"extranonce": -1},
        {"next_nonce": NONCE_SPACE},
        {"hashes_done": -1},
        {"shares_found": "3"},
    ],
)
def test_bad_mining_state_is_refused(change: dict) -> None:
    data = MiningState("job-1", TIP.serialize().hex(), 0, 0, 0, 0).to_dict()
    data.update(change)
    with pytest.raises(MiningError):
        MiningState.from_dict(data)
    with pytest.raises(MiningError):
        make_ctx().restore(data)


def test_local_job_template_builds_real_work_on_the_tip() -> None:
    tips = load_sample_headers()
    assert len(tips) == 10 and tips[-1] == TIP
    job = local_job_template(TIP, "job-a", 1_700_000_000)
    assert (job.prev_hash, job.bits, job.version, job.time, job.nonce) == (
        TIP.hash_hex(),
        TIP.bits,
        TIP.version,
        1_700_000_000,
        0,
    )
    assert local_job_template(TIP, "job-a", 1_700_000_000) == job
    assert local_job_template(TIP, "job-b", 1_700_000_000).merkle_root != job.merkle_root
    assert local_job_template(TIP, "job-a", 5).time == TIP.time + 1  # never before the tip
    ctx = MiningContext(NUMPY, job, "job-a", EASY, 2048)
    shares = ctx.mine_batch()
    assert shares and all(job.with_nonce(s.nonce).meets_target(share_target(EASY)) for s in shares)
    with pytest.raises(MiningError):
        local_job_template(TIP, "", 1)
    with pytest.raises(MiningError):
        local_job_template(TIP, "x", -1)
