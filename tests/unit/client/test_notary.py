"""The notary through the SDK: an admin sets up a task, a miner gets it verified, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hcp.auth.tokens import Role
from hcp.client import AsyncHcpClient, HcpClient
from hcp.errors import (
    ClaimAuthenticationError,
    NoActiveTaskError,
    PermissionDeniedError,
    ReplayDetectedError,
    UnexpectedResponseError,
)
from hcp.notary.miner.claim import build_artifact, build_payload, sign_claim
from hcp.notary.miner.keys import MinerKey
from hcp.notary.storage import sha256_ref
from tests.unit.client.support import leftovers, make_platform, run
from tests.unit.notary import wat_modules as wat

DATASET = b"x,y\n1,2\n3,4\n"


def test_task_claim_and_admin_lifecycle(tmp_path: Path) -> None:
    p = make_platform(tmp_path)
    key = MinerKey.generate()
    with TestClient(p.app, base_url="http://hcp") as http:
        admin = HcpClient(http=http, token=p.token(Role.ADMIN, "root")).notary
        ref = admin.upload_dataset(DATASET)
        assert ref.dataset_hash == sha256_ref(DATASET) and ref.size_bytes == len(DATASET)
        task = admin.create_task(task_id="sdk-1", metric="accuracy", performance_threshold=0.9,
                                 dataset_hash=ref.dataset_hash, max_training_time_seconds=5.0,
                                 expires_at=datetime.now(UTC) + timedelta(days=1), reward=1000)
        assert task.status == "active" and [t.task_id for t in admin.list_tasks()] == ["sdk-1"]
        miner = admin.register_miner(key.miner_id, key.public_key_hex, 10_000)
        assert (miner.stake, miner.status) == (10_000, "active")
        assert [m.miner_id for m in admin.list_miners()] == [key.miner_id]

        public = HcpClient(http=http).notary  # the miner endpoints need no token
        current = public.task()
        assert current.task_id == "sdk-1" and public.dataset(current.dataset_hash) == DATASET
        artifact = build_artifact(wat.score_wasm("0.9731"), {"lr": 0.1})
        claim = sign_claim(key, build_payload(key.miner_id, "sdk-1", 0.9731, artifact), artifact)
        verdict = public.submit_signed(claim)
        assert verdict.status == "verified" and verdict.verified_score == pytest.approx(0.9731)
        assert verdict.reward == 1000 and leftovers(verdict) == []
        stored = public.claim(verdict.submission_id)
        # Anyone reads the verdict; the signed material is for admins and the miner only.
        assert (stored.status, stored.reward, stored.nonce, stored.signature) == ("verified", 1000,
                                                                                  None, None)
        assert leftovers(stored) == []
        full = admin.claim(verdict.submission_id)
        assert full.nonce == claim.nonce and full.signature
        with pytest.raises(ReplayDetectedError):  # the same signed claim twice
            public.submit_signed(claim)
        forged = sign_claim(MinerKey.generate(key.miner_id),
                            build_payload(key.miner_id, "sdk-1", 0.9731, artifact), artifact)
        with pytest.raises(ClaimAuthenticationError):
            public.submit_signed(forged)
        assert admin.miner(key.miner_id).balance == 1000
        assert [c.submission_id for c in admin.list_claims(miner_id=key.miner_id, limit=10)
                if c.status == "verified"] == [verdict.submission_id]
        with pytest.raises(PermissionDeniedError):
            HcpClient(http=http, token=p.token(Role.CUSTOMER, "c")).notary.list_miners()
        assert admin.revoke_miner(key.miner_id).status == "revoked"
        assert admin.close_task("sdk-1").status != "active"
        with pytest.raises(NoActiveTaskError):
            public.task()


def test_a_dataset_that_does_not_match_its_hash_is_refused(tmp_path: Path) -> None:
    p = make_platform(tmp_path)
    ref = p.notary.datasets.put(DATASET)
    stored = next(f for f in (p.notary_home).rglob("*") if f.is_file() and f.read_bytes() == DATASET)
    stored.write_bytes(b"x,y\n6,6\n")  # the store's copy changed behind the notary's back

    async def go() -> None:
        async with p.asgi() as http:
            notary = AsyncHcpClient(http=http).notary
            with pytest.raises(UnexpectedResponseError, match="do not match"):
                await notary.dataset(ref)

    run(go())
