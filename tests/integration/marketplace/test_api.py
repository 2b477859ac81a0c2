"""The marketplace over HTTP (FastAPI app through httpx's ASGI transport), on SQLite and PostgreSQL:
wallet login with a real key, RBAC by JWT role, the worked example, typed refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from fastapi.testclient import TestClient

from hcp.auth.tokens import Role, TokenService
from hcp.config import Settings
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from hcp.marketplace.wallet import WalletLogin
from hcp.store.db import connect, migrate
from serve_apps.marketplace.app import create_app
from serve_apps.marketplace.routes import PREFIX, MarketplaceDeps

CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
TOKEN = 10**18


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 3, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t

    def monotonic(self) -> float:
        return self.t.timestamp()


class Api:
    def __init__(self, client: TestClient, tokens: TokenService, clock: Clock, ledger: SqlEscrowBackend) -> None:
        self.client, self.tokens, self.clock, self.ledger = client, tokens, clock, ledger

    def auth(self, subject: str, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(subject, role)}"}

    def call(self, method: str, path: str, headers: dict[str, str] | None = None,
             status: int = 200, **kw: Any) -> Any:
        r = self.client.request(method, PREFIX + path, headers=headers or {}, **kw)
        assert r.status_code == status, r.text
        return r.json()


@pytest.fixture
def api(database_url: str, tmp_path) -> Iterator[Api]:  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path, database_url=database_url, jwt_secret="t" * 40,
                        marketplace_oracles=["oracle-svc"])
    engine = connect(database_url)
    migrate(engine)
    clock = Clock()
    tokens = TokenService(settings.auth.jwt_secret or "", clock=clock)
    ledger = SqlEscrowBackend(engine)
    deps = MarketplaceDeps(service=MarketplaceService(engine, ledger, settings, clock),
                           wallet=WalletLogin(engine, tokens, settings, clock), tokens=tokens)
    with TestClient(create_app(settings, deps)) as client:
        yield Api(client, tokens, clock, ledger)
    engine.dispose()


def _wallet_token(api: Api, acct: Any, role: str) -> str:
    ch = api.call("POST", "/auth/wallet/challenge", json={"address": acct.address, "role": role}, status=201)
    sig = acct.sign_message(encode_defunct(text=ch["message"])).signature.hex()
    out = api.call("POST", "/auth/wallet/login",
                   json={"address": acct.address, "nonce": ch["nonce"], "signature": sig})
    assert out["subject"] == acct.address
    return out["token"]


def test_worked_example_over_http_with_wallet_logins(api: Api) -> None:
    renter_key, provider_key = Account.create(), Account.create()
    renter = {"Authorization": f"Bearer {_wallet_token(api, renter_key, 'renter')}"}
    provider = {"Authorization": f"Bearer {_wallet_token(api, provider_key, 'provider')}"}
    admin = api.auth("ops", Role.ADMIN)
    api.call("POST", "/ledger/mint", admin, 201,
             json={"account": renter_key.address, "amount": str(10 * TOKEN), "op_id": "buy-1"})

    offer = api.call("POST", "/offers", provider, 201, json={
        "gpu_model": "A100", "vcpu": 8, "memory_gb": 80, "storage_gb": 500,
        "price_per_hour": str(10 * TOKEN), "location": "eu-west"})
    found = api.call("GET", "/offers", renter, params={"gpu_model": "A100", "max_price": str(10 * TOKEN)})
    assert [o["id"] for o in found["items"]] == [offer["id"]]

    job = api.call("POST", "/jobs", renter, 201,
                   json={"offer_id": offer["id"], "image_cid": CID, "estimated_seconds": 3600})
    assert job["status"] == "CREATED" and job["max_cost"] == str(10 * TOKEN)
    assert api.call("GET", "/balances/me", renter)["balance"] == "0"
    api.call("POST", f"/jobs/{job['id']}/accept", provider)
    api.call("POST", f"/jobs/{job['id']}/start", provider)
    api.clock.t += timedelta(seconds=2700)
    done = api.call("POST", f"/jobs/{job['id']}/complete", provider)
    assert done["status"] == "COMPLETED"
    assert done["final_cost"] == "7500000000000000000"
    assert done["settlement"] == {"job_id": job["id"], "to_provider": "7350000000000000000",
                                  "to_platform": "150000000000000000", "refunded": "2500000000000000000",
                                  "remaining_locked": "0"}
    assert api.call("GET", "/balances/me", provider)["balance"] == "7350000000000000000"
    assert api.call("GET", "/balances/me", renter)["balance"] == "2500000000000000000"
    books = api.call("GET", "/ledger", admin)
    assert books["total_supply"] == str(10 * TOKEN) and books["escrowed"] == "0"
    assert books["balances"]["platform"] == "150000000000000000"


def _error(api: Api, method: str, path: str, headers: dict[str, str] | None, status: int, code: str,
           **kw: Any) -> None:
    body = api.call(method, path, headers, status, **kw)
    assert body["error"] == code, body
    assert "detail" in body


def test_rbac_and_typed_refusals(api: Api) -> None:
    renter, provider = api.auth("r1", Role.CUSTOMER), api.auth("p1", Role.PROVIDER)
    other_provider, admin = api.auth("p2", Role.PROVIDER), api.auth("ops", Role.ADMIN)
    spec = {"gpu_model": "H100", "vcpu": 16, "memory_gb": 80, "storage_gb": 100,
            "price_per_hour": 3600, "location": "us"}
    _error(api, "POST", "/offers", None, 401, "authentication_required", json=spec)
    _error(api, "POST", "/offers", {"Authorization": "Bearer nope"}, 401, "authentication_required", json=spec)
    _error(api, "POST", "/offers", renter, 403, "forbidden", json=spec)
    offer = api.call("POST", "/offers", provider, 201, json=spec)
    _error(api, "POST", "/offers", provider, 422, "validation_error", json={**spec, "vcpu": 0})
    _error(api, "GET", "/offers/unknown", renter, 404, "offer_not_found")
    _error(api, "POST", "/jobs", renter, 402, "insufficient_funds",
           json={"offer_id": offer["id"], "image_cid": CID, "estimated_seconds": 60})
    _error(api, "POST", "/ledger/mint", renter, 403, "forbidden",
           json={"account": "r1", "amount": 1, "op_id": "x"})
    api.call("POST", "/ledger/mint", admin, 201, json={"account": "r1", "amount": 10_000, "op_id": "f"})
    _error(api, "POST", "/jobs", renter, 422, "invalid_cid",
           json={"offer_id": offer["id"], "image_cid": "QmNotACid", "estimated_seconds": 60})
    _error(api, "POST", "/jobs", provider, 403, "forbidden",
           json={"offer_id": offer["id"], "image_cid": CID, "estimated_seconds": 60})
    job = api.call("POST", "/jobs", renter, 201,
                   json={"offer_id": offer["id"], "image_cid": CID, "estimated_seconds": 3600})
    jid = job["id"]
    _error(api, "POST", f"/jobs/{jid}/start", provider, 409, "invalid_job_transition")
    _error(api, "POST", f"/jobs/{jid}/accept", other_provider, 403, "forbidden")
    _error(api, "POST", f"/jobs/{jid}/accept", renter, 403, "forbidden")
    _error(api, "GET", f"/jobs/{jid}", other_provider, 403, "forbidden")
    _error(api, "GET", "/jobs/nope", renter, 404, "job_not_found")
    _error(api, "GET", "/balances/p1", renter, 403, "forbidden")
    api.call("POST", f"/jobs/{jid}/accept", provider)
    api.call("POST", f"/jobs/{jid}/start", provider)
    _error(api, "POST", f"/jobs/{jid}/cancel", renter, 409, "invalid_job_transition")
    api.call("POST", f"/jobs/{jid}/dispute", renter, json={"reason": "no GPU visible"})
    _error(api, "POST", f"/jobs/{jid}/resolve", renter, 403, "forbidden", json={"outcome": "user_fault"})
    _error(api, "POST", f"/jobs/{jid}/resolve", admin, 422, "validation_error", json={"outcome": "maybe"})
    oracle = api.auth("oracle-svc", Role.CUSTOMER)  # an oracle by configured subject, not by role
    out = api.call("POST", f"/jobs/{jid}/resolve", oracle, json={"outcome": "inconclusive"})
    assert out["status"] == "COMPLETED" and out["resolution"] == "inconclusive"
    # max cost 3600 units: half paid (1800 - 2% = 1764), half refunded
    assert out["settlement"]["to_provider"] == "1764" and out["settlement"]["refunded"] == "1800"
    rep = api.call("GET", "/reputation/p1", renter)
    assert rep["disputes"] == 1 and rep["score"] < 1000
    _error(api, "POST", "/reputation/p1/penalty", provider, 403, "forbidden", json={"points": 5})
    assert api.call("POST", "/reputation/p1/penalty", oracle, json={"points": 5})["penalty"] == 5


def test_wallet_login_refusals_over_http(api: Api) -> None:
    acct = Account.create()
    ch = api.call("POST", "/auth/wallet/challenge", json={"address": acct.address, "role": "provider"},
                  status=201)
    forged = Account.create().sign_message(encode_defunct(text=ch["message"])).signature.hex()
    _error(api, "POST", "/auth/wallet/login", None, 401, "wallet_login_failed",
           json={"address": acct.address, "nonce": ch["nonce"], "signature": forged})
    good = acct.sign_message(encode_defunct(text=ch["message"])).signature.hex()
    api.call("POST", "/auth/wallet/login", json={"address": acct.address, "nonce": ch["nonce"], "signature": good})
    _error(api, "POST", "/auth/wallet/login", None, 401, "wallet_login_failed",
           json={"address": acct.address, "nonce": ch["nonce"], "signature": good})
    _error(api, "POST", "/auth/wallet/challenge", None, 422, "validation_error",
           json={"address": "0x12", "role": "renter"})


def test_keyset_pages_over_http(api: Api) -> None:
    provider, renter = api.auth("p1", Role.PROVIDER), api.auth("r1", Role.CUSTOMER)
    for price in (5, 3, 9, 3, 7):
        api.call("POST", "/offers", provider, 201, json={
            "gpu_model": "A100", "vcpu": 8, "memory_gb": 80, "storage_gb": 500,
            "price_per_hour": price, "location": "eu"})
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, "sort": "price_desc"}
        if cursor:
            params["cursor"] = cursor
        page = api.call("GET", "/offers", renter, params=params)
        seen += [int(o["price_per_hour"]) for o in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [9, 7, 5, 3, 3]
    _error(api, "GET", "/offers", renter, 422, "validation_error", params={"cursor": "zzz"})
