"""The notary as its own FastAPI app and Ray Serve application (usable standalone).

``create_app`` builds the FastAPI app (tests drive it through httpx's ASGI transport);
``build_app`` binds the Serve deployment, whose sandbox work runs on the pool of
``actors.notary`` runner actors, so verification scales with the cluster.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Response

from hcp.auth.tokens import TokenService
from hcp.config import Settings
from hcp.notary.service import NotaryService
from serve_apps.edge import new_app
from serve_apps.notary.routes import router

log = logging.getLogger(__name__)


def create_app(settings: Settings, service: NotaryService | None = None,
               tokens: TokenService | None = None) -> FastAPI:
    app = new_app(settings, title="hcp notary", version="1")
    if service is None:
        from hcp.notary.metrics import PrometheusNotaryMetrics
        from hcp.notary.service import build_service
        from hcp.store.db import engine_for, migrate

        engine = engine_for(settings.resolved_database_url)
        migrate(engine)  # the notary served on its own is its own launch
        service = build_service(settings, engine, metrics=PrometheusNotaryMetrics())
    app.include_router(router(settings, service=service, tokens=tokens))
    exposition = getattr(service.pipeline.metrics, "exposition", None)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if exposition is not None:
        @app.get("/metrics")
        def metrics() -> Response:
            return Response(exposition(), media_type="text/plain; version=0.0.4")

    app.state.notary = service
    return app


def replica_app(settings_json: str, runners: list[Any]) -> FastAPI:
    """The app of one Serve replica: the runner actors' handles, Ray metrics."""
    from actors.metrics_sink import RaySink
    from actors.notary import RaySandboxPool
    from hcp.notary.service import build_service
    from hcp.observability.notary import SinkNotaryMetrics
    from hcp.store.db import engine_for

    s = Settings.model_validate_json(settings_json)
    engine = engine_for(s.resolved_database_url)  # migrated by build_app
    pool = RaySandboxPool(runners, s.notary.sandbox_queue)
    metrics = SinkNotaryMetrics(RaySink())  # the catalogue's names, through Ray's agent
    return create_app(s, build_service(s, engine, pool=pool, metrics=metrics))


def build_app(settings: Settings | None = None, **deployment_options: Any) -> Any:
    """The notary Serve application: ``serve.run(build_app(settings), route_prefix="/")``.

    Starts (or finds) the sandbox-runner actors first; each replica builds its FastAPI app
    when it starts (Serve's ingress builder) around their handles. The handles travel with
    the builder, which also keeps the (non-detached) runners alive while the app runs.
    """
    from ray import serve

    from actors.notary import start_sandbox_pool
    from hcp.store.db import engine_for, migrate

    settings = settings or Settings()
    migrate(engine_for(settings.resolved_database_url))  # once, in the driver, for every replica
    runners = start_sandbox_pool(settings)
    settings_json = settings.model_dump_json()

    def builder() -> FastAPI:
        return replica_app(settings_json, runners)

    @serve.deployment(name="notary", **deployment_options)
    @serve.ingress(builder)
    class NotaryDeployment:
        pass

    return NotaryDeployment.bind()
