"""Oracle validator benchmarks (``python -m bench.oracle``).

Lines (one JSON object each, ``bench.common.emit``), every baseline measured in this run:
- ``heartbeats_verified_per_s``: ``HeartbeatVerifier.verify`` (canonical bytes, key lookup,
  freshness, order, Ed25519) over signed heartbeats of ``--providers`` providers; baseline =
  bare PyNaCl ``VerifyKey.verify`` of the same signed bytes with the keys already built.
  ``heartbeat_pipeline_per_s``: verify + missed-heartbeat tracker + report accumulator, what
  a validator does per heartbeat (same baseline). ``heartbeat_core_share_10k``: the share of
  one core that 10,000 providers at one heartbeat a minute take through that pipeline.
- ``validator_node_heartbeats_per_s``: what the validator actor runs, ``ValidatorNode.heartbeat``
  with keys from the store's ``IdentityBook`` and the tick's batched keeping of every accepted
  heartbeat in the store (SQLite); same baseline. ``validator_node_core_share_10k``: its share
  of a core for 10,000 providers.
- ``challenge_round_trip_ms`` (p50): build and sign a challenge, answer it from a real
  embedded block store holding a real imported file (proof + signature), verify it on the CID
  alone; baseline = ``hcp.images.proofs.answer`` + ``check_answer`` (unsigned, same store).
  ``challenge_verify_ms`` (p50): the validator's part alone; baseline = ``verify_range`` of the
  same proof. ``challenge_answer_kib``: the answer's proof size.
- ``report_hour_s``: one hour of ``--providers`` providers (60 heartbeats and 10 challenge
  verdicts each) accumulated, then the report built, canonicalised and signed; baseline = a
  bare dict count of the same heartbeat events. ``report_build_sign_s``: build + canonical
  JSON + Ed25519 alone; baseline = ``json.dumps`` + SHA-256 of the same rows.
  ``report_consensus_s``: agreement over three validators' reports; ``report_save_s``: one
  report into SQLite; baseline = ``executemany`` of the same rows through sqlite3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nacl.signing

from bench.common import emit, note
from hcp.images.cids import Cid
from hcp.images.patterns import pattern_bytes
from hcp.images.proofs import Challenge, answer, check_answer, verify_range
from hcp.images.store.embedded import EmbeddedStore
from hcp.oracle.audit import ChallengeResult, PossessionAuditor, check_proof
from hcp.oracle.challenge import ImageTarget, answer_challenge, build_challenge
from hcp.oracle.findings import Outcome
from hcp.oracle.heartbeat import DOMAIN as HB_DOMAIN
from hcp.oracle.heartbeat import AcceptedHeartbeat, Heartbeat, HeartbeatVerifier
from hcp.oracle.liveness import HeartbeatTracker
from hcp.oracle.report import ReportAccumulator, consensus, sign_report
from hcp.oracle.repository import ROW_FIELDS, OracleRepository
from hcp.oracle.settings import OracleSettings
from hcp.oracle.signing import KeyRing, Signer
from hcp.oracle.wire import signing_bytes
from hcp.store.db import connect, migrate

B = "oracle"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t

    def monotonic(self) -> float:
        return self.t.timestamp()


def _signers(n: int) -> list[Signer]:
    return [Signer.from_seed(f"p{i:05d}", hashlib.sha256(b"bench%d" % i).digest()) for i in range(n)]


def bench_heartbeats(providers: int, total: int) -> None:
    settings = OracleSettings()
    signers = _signers(providers)
    ring = KeyRing({s.identity: s.public_key for s in signers})
    clock = Clock(T0)
    beats = []
    for j in range(total):
        s = signers[j % providers]
        beats.append(Heartbeat.signed(s, j // providers, T0, running_jobs=("job-1",),
                                      gpu_util_bps=(8000, 7000), uptime_seconds=3600))
    vks = {s.identity: nacl.signing.VerifyKey(s.public_key) for s in signers}
    raw = [(vks[h.provider_id], signing_bytes(HB_DOMAIN, h.body()), h.signature) for h in beats]

    t0 = time.perf_counter()
    for vk, msg, sig in raw:
        vk.verify(msg, sig)
    bare = total / (time.perf_counter() - t0)

    verifier = HeartbeatVerifier(ring, settings, clock)
    t0 = time.perf_counter()
    for h in beats:
        verifier.verify(h)
    ours = total / (time.perf_counter() - t0)
    emit(B, "heartbeats_verified_per_s", ours, "heartbeats/s", bare, providers=providers)

    verifier = HeartbeatVerifier(ring, settings, clock)
    tracker = HeartbeatTracker("val-0", settings, clock)
    acc = ReportAccumulator("val-0", T0, settings)
    for s in signers:
        tracker.expect(s.identity, T0)
    t0 = time.perf_counter()
    for h in beats:
        a = verifier.verify(h)
        tracker.record(a)
        acc.add_heartbeat(a)
    pipe = total / (time.perf_counter() - t0)
    emit(B, "heartbeat_pipeline_per_s", pipe, "heartbeats/s", bare, providers=providers)
    emit(B, "heartbeat_core_share_10k", 10_000 / 60 / pipe, "cores", 10_000 / 60 / bare)


def bench_validator_node(tmp: Path, providers: int, total: int) -> None:
    """What a validator actor runs per heartbeat: ``ValidatorNode.heartbeat`` (keys from the
    store's ``IdentityBook``, verify, tracker, accumulator) and its tick's batched keeping of
    the accepted heartbeats in the store (SQLite here), one tick per second of 10,000
    providers' traffic."""
    from sqlalchemy.orm import Session

    from hcp.oracle import models as om
    from hcp.oracle.identities import IdentityBook, Role
    from hcp.oracle.validator import ValidatorNode

    settings = OracleSettings()
    signers = _signers(providers)
    engine = connect(f"sqlite:///{tmp / 'node.db'}")
    migrate(engine)
    with Session(engine) as s, s.begin():
        s.execute(om.OrcIdentity.__table__.insert(), [
            {"identity": x.identity, "role": Role.PROVIDER.value, "public_key": x.public_key.hex(),
             "registered_at": T0} for x in signers])
    clock = Clock(T0)
    repo = OracleRepository(engine, clock)
    node = ValidatorNode(Signer.from_seed("val-0", b"\x05" * 32), IdentityBook(engine, clock),
                         repo, settings, clock)
    node.sync()
    beats = [Heartbeat.signed(signers[j % providers], j // providers + 1, T0,
                              running_jobs=("job-1",), gpu_util_bps=(8000,), uptime_seconds=60)
             for j in range(total)]
    vks = {x.identity: nacl.signing.VerifyKey(x.public_key) for x in signers}
    raw = [(vks[h.provider_id], signing_bytes(HB_DOMAIN, h.body()), h.signature) for h in beats]
    t0 = time.perf_counter()
    for vk, msg, sig in raw:
        vk.verify(msg, sig)
    bare = total / (time.perf_counter() - t0)
    per_tick = max(1, 10_000 // 60)  # one second of 10,000 providers at one a minute
    t0 = time.perf_counter()
    for j, h in enumerate(beats, 1):
        node.heartbeat(h)
        if j % per_tick == 0:
            node.flush()
    node.flush()
    ours = total / (time.perf_counter() - t0)
    emit(B, "validator_node_heartbeats_per_s", ours, "heartbeats/s", bare, providers=providers,
         store="sqlite", flush_every=per_tick)
    emit(B, "validator_node_core_share_10k", 10_000 / 60 / ours, "cores", 10_000 / 60 / bare)
    engine.dispose()


def _store(path: Path) -> EmbeddedStore:
    path.mkdir(parents=True, exist_ok=True)
    engine = connect(f"sqlite:///{path / 'store.db'}")
    migrate(engine)
    return EmbeddedStore(path / "store", engine, 8 << 30)


def bench_challenges(tmp: Path, mib: int, rounds: int) -> None:
    settings = OracleSettings()
    store = _store(tmp / "node")
    r = store.add([pattern_bytes("oracle-bench", mib << 20)])
    target = ImageTarget(r.cid, "", r.size)
    provider = Signer.from_seed("prov", b"\x05" * 32)
    validator = Signer.from_seed("val-0", b"\x06" * 32)
    clock = Clock(T0)
    auditor = PossessionAuditor(validator, KeyRing({"prov": provider.public_key}), settings, clock)
    rng = random.Random(5)
    trip, verify, sizes = [], [], []
    for i in range(rounds):
        t0 = time.perf_counter()
        c = auditor.challenge("prov", [target], f"r{i}", rng=rng)
        a = answer_challenge(c, store.get_block, provider, clock.now())
        t1 = time.perf_counter()
        res = auditor.submit(a)
        t2 = time.perf_counter()
        assert res.outcome is Outcome.OK, res.detail
        trip.append(t2 - t0)
        verify.append(t2 - t1)
        sizes.append(sum(len(b) for b in a.blocks))
    base_trip, base_verify = [], []
    for _ in range(rounds):
        off = rng.randrange(r.size - 1024)
        ch = Challenge(r.cid, off, 1024, rng.randbytes(32))
        t0 = time.perf_counter()
        proof, digest = answer(ch, store.get_block)
        assert check_answer(ch, proof, digest)
        base_trip.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        verify_range(r.cid, off, 1024, proof.blocks)
        base_verify.append(time.perf_counter() - t0)
    p50 = statistics.median
    emit(B, "challenge_round_trip_ms", p50(trip) * 1e3, "ms", p50(base_trip) * 1e3,
         file_mib=mib, rounds=rounds)
    emit(B, "challenge_verify_ms", p50(verify) * 1e3, "ms", p50(base_verify) * 1e3)
    emit(B, "challenge_answer_kib", statistics.mean(sizes) / 1024, "KiB", None,
         leaf_kib=256)
    # A second validator reviewing the first one's evidence pays only the pure check.
    c = build_challenge(validator, "prov", [target], "rx", clock.now(), settings, rng)
    a = answer_challenge(c, store.get_block, provider, clock.now())
    t0 = time.perf_counter()
    for _ in range(50):
        check_proof(c, a.blocks, a.digest)
    emit(B, "challenge_review_ms", (time.perf_counter() - t0) / 50 * 1e3, "ms",
         p50(base_verify) * 1e3)
    store.engine.dispose()


def bench_report(tmp: Path, providers: int) -> None:
    settings = OracleSettings()
    validator = Signer.from_seed("val-0", b"\x06" * 32)
    ids = [f"p{i:05d}" for i in range(providers)]
    hb = Heartbeat.signed(Signer.from_seed("x", b"\x01" * 32), 0, T0)
    events = []
    for minute in range(60):
        base = T0 + timedelta(minutes=minute)
        for i, pid in enumerate(ids):
            at = base + timedelta(milliseconds=(i * 7) % 60_000)
            events.append(AcceptedHeartbeat(Heartbeat(pid, minute, at, (), (), 0, hb.signature), at))
    target = ImageTarget(Cid.from_digest(b"\x09" * 32, 0x70, 0), "", 1 << 20)
    results = []
    for k in range(10):
        c = build_challenge(validator, "p00000", [target], f"r{k}", T0 + timedelta(minutes=6 * k),
                            settings, random.Random(k))
        for pid in ids:
            results.append(ChallengeResult(replace(c, provider_id=pid), Outcome.OK,
                                           c.issued_at + timedelta(seconds=2), 2000))
    note(f"report: {len(events)} heartbeats, {len(results)} verdicts")

    t0 = time.perf_counter()
    counts: dict[str, int] = {}
    for e in events:
        counts[e.heartbeat.provider_id] = counts.get(e.heartbeat.provider_id, 0) + 1
    bare = time.perf_counter() - t0

    t0 = time.perf_counter()
    acc = ReportAccumulator("val-0", T0, settings)
    for pid in ids:
        acc.expect(pid, T0 - timedelta(days=1), last_heartbeat_at=T0 - timedelta(seconds=30))
    for e in events:
        acc.add_heartbeat(e)
    for res in results:
        acc.add_result(res)
    t1 = time.perf_counter()
    report = acc.build()
    signed = sign_report(report, validator)
    t2 = time.perf_counter()
    assert len(report.measurements) == providers and report.measurements[0].uptime_bps == 10_000
    emit(B, "report_hour_s", t2 - t0, "s", bare, providers=providers, heartbeats=len(events))

    rows = [m.row() for m in report.measurements]
    t3 = time.perf_counter()
    hashlib.sha256(json.dumps(rows).encode()).digest()
    plain = time.perf_counter() - t3
    emit(B, "report_build_sign_s", t2 - t1, "s", plain, canonical_mib=round(
        len(report.signing_bytes()) / (1 << 20), 2))

    others = [replace(report, validator_id=f"val-{i}") for i in (1, 2)]
    t0 = time.perf_counter()
    agreed = consensus([report, *others], 2)
    emit(B, "report_consensus_s", time.perf_counter() - t0, "s", None, providers=len(agreed))

    engine = connect(f"sqlite:///{tmp / 'oracle.db'}")
    migrate(engine)
    t0 = time.perf_counter()
    OracleRepository(engine, Clock(T0)).save_report(signed)
    ours = time.perf_counter() - t0
    engine.dispose()
    conn = sqlite3.connect(tmp / "plain.db")
    conn.execute(f"CREATE TABLE r (report_id TEXT, {', '.join(ROW_FIELDS)})")
    t0 = time.perf_counter()
    with conn:
        conn.executemany(f"INSERT INTO r VALUES ({', '.join('?' * (len(ROW_FIELDS) + 1))})",
                         [("rep", *row) for row in rows])
    emit(B, "report_save_s", ours, "s", time.perf_counter() - t0, backend="sqlite")
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--providers", type=int, default=10_000)
    ap.add_argument("--heartbeats", type=int, default=30_000, help="heartbeats verified")
    ap.add_argument("--file-mib", type=int, default=256, help="file the challenges read")
    ap.add_argument("--rounds", type=int, default=200, help="challenge round trips")
    ap.add_argument("--skip", nargs="*", default=[], choices=["heartbeats", "node", "challenges", "report"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hcp-bench-oracle-") as d:
        tmp = Path(d)
        if "heartbeats" not in args.skip:
            bench_heartbeats(args.providers, args.heartbeats)
        if "node" not in args.skip:
            bench_validator_node(tmp, args.providers, args.heartbeats)
        if "challenges" not in args.skip:
            bench_challenges(tmp, args.file_mib, args.rounds)
        if "report" not in args.skip:
            bench_report(tmp, args.providers)


if __name__ == "__main__":
    main()
