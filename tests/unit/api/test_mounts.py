"""The platform ingress mounts the notary's, marketplace's, image node's and instances'
routers beside its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from hcp.config import Settings
from hcp.ratelimit import LeasedRateLimiter, MemoryRateLimiter
from hcp.store import engine_for, migrate
from serve_apps.factory import other_app_routers
from serve_apps.ratelimit import RequestLimits


def test_notary_and_marketplace_routers_build_and_mount(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(home=tmp_path, jwt_secret="x" * 40)
    migrate(engine_for(settings.resolved_database_url))  # as the platform's launch does first
    limits = RequestLimits(LeasedRateLimiter(MemoryRateLimiter(), blocking_io=False), 100, 60, 10)
    routers = [make(limits) for make in other_app_routers(settings)]
    # A router that failed to build is logged and skipped; here every one must build.
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    paths = set(app.openapi()["paths"])
    assert "/api/v1/task" in paths and "/api/v1/submit" in paths
    assert any(p.startswith("/api/v1/marketplace/") for p in paths)
    # the image node agents pull from (Kubo RPC verbs, trustless gateway, image API)
    assert "/api/v0/block/get" in paths and any(p.startswith("/ipfs/") for p in paths)
    assert any(p.startswith("/api/v1/images") for p in paths)
    assert {"/api/v1/instances", "/api/v1/agent/jobs"} <= paths
