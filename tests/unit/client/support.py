"""The whole platform API as one FastAPI app without Ray, for driving the SDK.

It is the app ``serve_apps.factory.build_app`` builds for the Serve ingress, with every
router mounted (platform, notary, marketplace). What would be a Ray actor is replaced the way
the API's own tests do it: workloads go through the real ``RouterWorkloads`` backend into
the real router core and SQL store (only the actor handle is a plain object); the fleet and
optimizer are ``tests/unit/api/support.py``'s stand-ins, the notary and the marketplace are
their real services on SQLite. ``Server`` runs the same app under uvicorn on a loopback port
for the WebSocket, and can be stopped and started again like a replica restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from hcp.auth.tokens import Role
from hcp.economics.market.tick import PriceTick
from hcp.economics.optimizer.ticks import tick_to_dict
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from hcp.marketplace.wallet import WalletLogin
from hcp.notary.service import NotaryService
from hcp.store import connect
from hcp.workloads.router import WorkloadRouter
from serve_apps.factory import build_app
from serve_apps.marketplace.routes import MarketplaceDeps
from serve_apps.marketplace.routes import router as marketplace_router
from serve_apps.notary.routes import router as notary_router
from tests.unit.api.support import FakeEconomics, Harness, make_harness
from tests.unit.notary.support import free_port, make_service, notary_settings


class TickEconomics(FakeEconomics):
    """The optimizer's answer in its real shape: a price tick and USD/hour per device and mode."""

    async def profitability(self) -> dict[str, Any]:
        await super().profitability()  # raises when marked unavailable
        tick = PriceTick(at=datetime(2022, 3, 1, 12, tzinfo=UTC), btc_usd=43_000.0, difficulty=27.5e12,
                         block_subsidy_btc=6.25, fees_per_block_btc=0.05,
                         power_usd_per_mwh={"lab": 180.0}, gpu_usd_per_hour={"H100": 3.44})
        return {"tick": tick_to_dict(tick),
                "devices": {"g0": {"MINING": 0.01, "INFERENCE": 2.06, "IDLE": -0.02}}}


@dataclass
class Platform:
    harness: Harness
    app: FastAPI
    notary: NotaryService
    market: MarketplaceService
    router: WorkloadRouter
    notary_home: Path

    def token(self, role: Role, subject: str | None = None) -> str:
        return self.harness.tokens.issue(subject or f"{role.value}-1", role)

    def build(self) -> FastAPI:
        """A fresh app over the same services and stores (a restarted replica)."""
        return _app(self.harness, self.notary, self.market)

    def asgi(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://hcp")


def _app(h: Harness, notary: NotaryService, market: MarketplaceService) -> FastAPI:
    deps = MarketplaceDeps(service=market, wallet=WalletLogin(market.engine, h.tokens, h.settings,
                                                              h.clock), tokens=h.tokens)
    extra = [lambda limits: notary_router(notary.settings, limits, notary, h.tokens),
             lambda limits: marketplace_router(h.settings, limits, deps)]
    return build_app(h.services, h.tokens, h.settings, extra)


def make_platform(tmp_path: Path, **overrides: Any) -> Platform:
    h = make_harness(tmp_path, real_router=True, **overrides)
    engine = connect(h.settings.resolved_database_url)
    assert h.router is not None
    core = h.router.core
    core.resume()
    h.economics = TickEconomics()
    h.services = dataclasses.replace(h.services, economics=h.economics)
    home = tmp_path / "notary"
    home.mkdir()
    notary = make_service(notary_settings(home, notary_rate_limit_per_minute=10_000))
    market = MarketplaceService(engine, SqlEscrowBackend(engine), h.settings, h.clock)
    return Platform(h, _app(h, notary, market), notary, market, core, home)


class Server:
    """The app under uvicorn on 127.0.0.1; ``stop()`` and ``start()`` keep the port."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = uvicorn.Config(self.platform.build(), host="127.0.0.1", port=self.port,
                                log_level="warning", ws="websockets-sansio", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Close every connection (clients see the socket drop) and stop serving."""
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._server.force_exit = True
        self._thread.join(timeout=20)
        self._server = None


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def leftovers(value: Any, where: str = "") -> list[str]:
    """Fields the server sent that the SDK's models do not declare (empty: they match)."""
    from pydantic import BaseModel

    out: list[str] = []
    if isinstance(value, BaseModel):
        out += [f"{where}.{k}" for k in (value.model_extra or {})]
        for name in type(value).model_fields:
            out += leftovers(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            out += leftovers(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            out += leftovers(v, f"{where}[{k}]")
    return out
