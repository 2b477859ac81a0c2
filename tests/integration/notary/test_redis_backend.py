"""Production backends on a private redis-server: fail closed when it dies, recover after."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcp.notary.service import make_redis
from serve_apps.notary.app import create_app
from tests.unit.notary import wat_modules as wat
from tests.unit.notary.support import (
    Miner,
    PrivateRedis,
    add_task,
    asgi_client,
    make_artifact,
    make_service,
    notary_settings,
    private_redis,
    register,
)

GOOD = make_artifact(wat.score_wasm("0.9731"))


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    yield from private_redis(tmp_path)


def _post(app: Any, data: dict, files: dict) -> Any:
    async def go() -> Any:
        async with asgi_client(app) as c:
            return await c.post("/api/v1/submit", data=data, files=files)
    return asyncio.run(go())


def test_redis_down_fails_closed_then_recovers(tmp_path: Path, redis_server: PrivateRedis) -> None:
    settings = notary_settings(tmp_path, notary_redis_url=redis_server.url)
    svc = make_service(settings, redis_client=make_redis(redis_server.url))
    app = create_app(settings, svc)
    add_task(svc)
    miner = Miner()
    register(svc, miner)

    first = miner.form(GOOD, 0.9731)
    assert _post(app, *first).status_code == 202

    redis_server.stop()
    down = _post(app, *miner.form(GOOD, 0.9731))
    assert down.status_code == 503, down.text
    assert len(svc.ledger.list_claims()) == 1  # nothing accepted while blind

    redis_server.start()  # same port, empty: every nonce and counter forgotten
    assert _post(app, *miner.form(GOOD, 0.9731)).status_code == 202
    # Redis forgot the first nonce, the ledger did not: the replay still fails.
    replay = _post(app, *first)
    assert replay.status_code == 403 and replay.json()["error"] == "replay_detected"
    assert replay.json()["nonce"] == json.loads(first[0]["payload"])["nonce"]


def test_redis_quota_holds_exactly_under_concurrency(tmp_path: Path,
                                                     redis_server: PrivateRedis) -> None:
    settings = notary_settings(tmp_path, notary_redis_url=redis_server.url, notary_miner_limit=5)
    svc = make_service(settings, redis_client=make_redis(redis_server.url))
    app = create_app(settings, svc)
    add_task(svc)
    miner = Miner()
    register(svc, miner)

    async def go() -> list[Any]:
        async with asgi_client(app) as c:
            forms = [miner.form(GOOD, 0.9731) for _ in range(16)]
            return await asyncio.gather(*[c.post("/api/v1/submit", data=d, files=f)
                                          for d, f in forms])
    codes = sorted(r.status_code for r in asyncio.run(go()))
    assert codes.count(202) == 5 and codes.count(429) == 11, codes
