"""Platform API latency through Ray Serve against a no-op Serve endpoint, same run, same proxy.

Starts a local Ray cluster, the local fleet (simulated GPUs), the router and the Serve app,
plus a no-op FastAPI deployment with the same Serve options. The customer first submits 25
workloads, so the listed page holds 20. For each endpoint it sends ``--requests`` requests
from ``--concurrency`` concurrent clients, alternating rounds between the endpoint and two
no-op twins so all see the same machine load: one answering ``{}`` (the issue's baseline,
goal: ratio <= 1.3) and one answering the very bytes the endpoint answered (``*_vs_same_
payload``: what hcp's work costs beyond carrying its answer); for embeddings also the model
served bare by Serve (``*_vs_bare_model``: what hcp adds to the model's own cost). Reports
p50, p95, p99 and requests/s. Then runs ``bench.router.run()`` (router admissions per second).

    python -m bench.api [--requests 400] [--concurrency 8] [--rounds 4] [--no-router]

Prints one JSON object per line (see bench/common.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import emit, note, percentile

B = "api"
SPEC_BODY = {"type": "batch", "priority": 3, "duration_seconds": 5, "name": "bench"}
EMBED_BODY = {
    "model": "all-MiniLM-L6-v2",
    "input": "How fast does the platform answer an embedding request?",
    "encoding_format": "float",
}


def _noop_app(payloads: dict[str, tuple[bytes, int]]) -> Any:
    """No-op twins: an empty answer (the issue's baseline) and, per endpoint, the very bytes
    the API answered, so that what only the payload costs (serializing and carrying it through
    the proxy) is measured apart from what hcp's work costs."""
    from fastapi import FastAPI, Response
    from ray import serve

    from actors.options import API_MAX_ONGOING as MAX_ONGOING

    app = FastAPI()

    @app.get("/ping")
    async def ping_get() -> dict[str, Any]:
        return {}

    @app.post("/ping", status_code=201)
    async def ping_post(body: dict[str, Any]) -> dict[str, Any]:
        return body

    @app.get("/payload/{name}")
    async def payload_get(name: str) -> Response:
        content, status = payloads[name]
        return Response(content, status_code=status, media_type="application/json")

    @app.post("/payload/{name}")
    async def payload_post(name: str, body: dict[str, Any]) -> Response:
        content, status = payloads[name]
        return Response(content, status_code=status, media_type="application/json")

    @serve.deployment(
        name="noop", max_ongoing_requests=MAX_ONGOING, ray_actor_options={"num_cpus": 0}
    )
    @serve.ingress(app)
    class Noop:
        pass

    return Noop.bind()


def _model_twin_app(batch_size: int, batch_wait_s: float) -> Any:
    """The embedding model served bare: its own MiniLM in a Serve replica, requests batched
    like hcp's, no auth, routing, GPU actor or usage accounting. Against it, the embeddings
    ratio is what hcp adds to serving the model; against the no-op, what the model costs."""
    import asyncio as aio

    from ray import serve

    from actors.options import API_MAX_ONGOING as MAX_ONGOING

    @serve.deployment(
        name="model_twin", max_ongoing_requests=MAX_ONGOING, ray_actor_options={"num_cpus": 0}
    )
    class ModelTwin:
        def __init__(self) -> None:
            from hcp.inference.minilm import MiniLMEmbedder

            self._model = MiniLMEmbedder("cpu")
            self._model.load()
            self._model.warm()

        @serve.batch(max_batch_size=batch_size, batch_wait_timeout_s=batch_wait_s)
        async def _embed(self, texts: list[str]) -> list[list[float]]:
            return (await aio.to_thread(self._model.embed, texts)).tolist()

        async def __call__(self, request: Any) -> Any:  # a Starlette request, no FastAPI
            from starlette.responses import JSONResponse

            body = await request.json()
            vec = await self._embed(body["input"])
            return JSONResponse({"object": "list", "model": body["model"],
                                 "data": [{"object": "embedding", "index": 0, "embedding": vec}],
                                 "usage": {"prompt_tokens": 0, "total_tokens": 0}})

    return ModelTwin.bind()


async def _load(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    body: Any,
    headers: dict[str, str],
    n: int,
    concurrency: int,
    expect: int,
) -> tuple[list[float], float]:
    lat: list[float] = []
    todo = iter(range(n))

    async def worker() -> None:
        for _ in todo:
            t0 = time.perf_counter()
            r = await client.request(method, url, json=body, headers=headers)
            lat.append((time.perf_counter() - t0) * 1e3)
            if r.status_code != expect:
                raise RuntimeError(f"{method} {url}: {r.status_code} {r.text[:200]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat, n / (time.perf_counter() - t0)


async def _measure(
    base: str,
    case: tuple[str, str, str, Any, int],
    noop: tuple[str, Any, int],
    headers: dict[str, str],
    n: int,
    concurrency: int,
    rounds: int,
    rate_limit_backend: str,
) -> None:
    name, method, path, body, expect = case
    noop_path, noop_body, noop_expect = noop
    per_round = max(1, n // rounds)
    twins = {
        "noop": (method, noop_path, noop_body, {}, noop_expect),
        "payload": (method, f"/noop/payload/{name}", body, {}, expect),
        "api": (method, path, body, headers, expect),
    }
    if name == "embeddings":
        twins["model"] = (method, "/model-twin", body, {}, 200)
    lat: dict[str, list[float]] = {k: [] for k in twins}
    rps: dict[str, list[float]] = {k: [] for k in twins}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        # Warm every path (connections, first-call imports, the router's and GPU's first use).
        for m, p, b, h, e in twins.values():
            await _load(client, m, p, b, h, concurrency * 2, concurrency, e)
        for _ in range(rounds):
            for key, (m, p, b, h, e) in twins.items():
                got, r = await _load(client, m, p, b, h, per_round, concurrency, e)
                lat[key] += got
                rps[key].append(r)
    extra = {
        "requests": per_round * rounds,
        "concurrency": concurrency,
        "endpoint": f"{method} {path}",
        "rate_limit_backend": rate_limit_backend,
        # Shared, busy machines make every figure noisier; the ratio to the no-op is what counts.
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    for twin, suffix, kind in (
        ("noop", "", f"no-op Serve endpoint {method} {noop_path} (empty answer)"),
        ("payload", "_vs_same_payload", "no-op Serve endpoint answering the same bytes"),
        ("model", "_vs_bare_model", "the same model served bare by Serve, batched alike"),
    ):
        if twin not in twins:
            continue
        for q in (50, 95, 99):
            emit(B, f"{name}_p{q}_ms{suffix}", percentile(lat["api"], q), "ms",
                 baseline=percentile(lat[twin], q), baseline_kind=kind, **extra)
        emit(B, f"{name}_rps{suffix}", sum(rps["api"]) / rounds, "1/s",
             baseline=sum(rps[twin]) / rounds, baseline_kind=kind, **extra)


async def _answers(base: str, cases: list[Any]) -> dict[str, tuple[bytes, int]]:
    """One real answer of each endpoint: what its payload-matched twin sends back."""
    out: dict[str, tuple[bytes, int]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        for (name, method, path, body, expect), _noop, headers in cases:
            r = await client.request(method, path, json=body, headers=headers)
            if r.status_code != expect:
                raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:200]}")
            out[name] = (r.content, r.status_code)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(
    requests: int = 400,
    concurrency: int = 8,
    rounds: int = 4,
    router: bool = True,
    rate_limit_backend: str = "sql",
) -> None:
    import ray
    from ray import serve

    from actors.fleet import launch_fleet, shutdown_fleet
    from actors.router import launch_router
    from actors.topology import prepare_store
    from hcp.auth.tokens import Role, TokenService
    from hcp.config import Settings
    from hcp.fleet.spec import load_fleet_spec
    from serve_apps.app import application

    home = Path(tempfile.mkdtemp(prefix="hcp-bench-api-"))
    port = _free_port()
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{home / 'hcp.db'}",
        ray_namespace="hcp-bench-api",
        jwt_secret="bench-secret-" + "z" * 32,
        api_rate_limit=1_000_000_000,
        api_port=port,
        api_rate_limit_backend=rate_limit_backend,
    )
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=8,
        include_dashboard=False,
        log_to_driver=False,
        namespace="hcp-bench-api",
        _temp_dir=tempfile.mkdtemp(prefix="hcp-ray-", dir="/tmp"),
        runtime_env={
            "env_vars": {
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "PYTHONPATH": os.getcwd(),
            }
        },
    )
    handles = router_actor = None
    try:
        spec = load_fleet_spec(settings.fleet_spec)
        prepare_store(spec, settings)
        note("starting the fleet, router and Serve...")
        handles = launch_fleet(spec, settings)
        router_actor = launch_router(handles, settings)  # the handle keeps the actor alive
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(application(settings), name="hcp", route_prefix="/", blocking=False)
        tokens = TokenService(settings.auth.jwt_secret or "")
        admin = {"Authorization": f"Bearer {tokens.issue('bench-admin', Role.ADMIN)}"}
        customer = {"Authorization": f"Bearer {tokens.issue('bench-customer', Role.CUSTOMER)}"}
        base = f"http://127.0.0.1:{port}"
        cases = [
            (
                ("get_workloads", "GET", "/api/v1/workloads?limit=20", None, 200),
                ("/noop/ping", None, 200),
                customer,
            ),
            (
                ("post_workloads", "POST", "/api/v1/workloads", SPEC_BODY, 201),
                ("/noop/ping", SPEC_BODY, 201),
                customer,
            ),
            (
                ("get_resources", "GET", "/api/v1/resources", None, 200),
                ("/noop/ping", None, 200),
                admin,
            ),
            (
                ("embeddings", "POST", "/v1/embeddings", EMBED_BODY, 200),
                ("/noop/ping", EMBED_BODY, 201),
                customer,
            ),
        ]
        # A page of the size the benchmark lists (the answers below are what the twins send).
        asyncio.run(_answers(base, [cases[1]] * 25))
        payloads = asyncio.run(_answers(base, cases))
        serve.run(_noop_app(payloads), name="noop", route_prefix="/noop", blocking=False)
        serve.run(
            _model_twin_app(settings.api.embed_batch_size, settings.api.embed_batch_wait_s),
            name="model_twin", route_prefix="/model-twin", blocking=False,
        )
        for case, noop, headers in cases:
            note(f"measuring {case[1]} {case[2]}...")
            asyncio.run(
                _measure(
                    base, case, noop, headers, requests, concurrency, rounds, rate_limit_backend
                )
            )
    finally:
        if router_actor is not None:
            ray.kill(router_actor, no_restart=True)
        if handles is not None:
            shutdown_fleet(handles)
        serve.shutdown()
        ray.shutdown()
    if router:
        try:
            import bench.router as router_bench
        except ImportError:
            note("bench.router is not available; router admissions not measured")
            return
        router_bench.run()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--no-router", action="store_true")
    ap.add_argument("--rate-limit-backend", choices=("sql", "memory", "redis"), default="sql")
    a = ap.parse_args()
    run(a.requests, a.concurrency, a.rounds, not a.no_router, a.rate_limit_backend)


if __name__ == "__main__":
    main()
