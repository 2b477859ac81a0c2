"""``/api/v1/images`` and the factory that mounts the whole node (image API, Kubo RPC subset,
trustless gateway) on one router.

Authorization (the same bearer tokens as the rest of the API): any signed-in role may list
and read image metadata; customers, providers and admins may upload (renters bring their
workloads); pin and unpin are for providers and admins. The gateway is public: its answers are
content-addressed and verified by whoever fetches them. The Kubo RPC subset needs a provider
or admin token unless ``HCP_IMAGES__RPC_PUBLIC`` is set.

(No ``from __future__ import annotations``: FastAPI resolves the aliases defined inside
``router()`` at decoration time.)
"""

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from hcp.auth.tokens import Principal, Role, TokenService
from hcp.config import Settings
from hcp.errors import HcpError, ValidationError
from hcp.images.catalog import ImageCatalog
from hcp.images.cids import normalize, parse_cid
from hcp.images.service import ImageService
from hcp.images.store.embedded import EmbeddedStore
from serve_apps.auth import principal_dependency, require_roles
from serve_apps.errors import ERROR_SCHEMA
from serve_apps.images.gateway import gateway_router
from serve_apps.images.kubo_rpc import kubo_router
from serve_apps.images.multipart import read_parts
from serve_apps.ratelimit import RequestLimits, rate_guard

PREFIX = "/api/v1/images"
NDJSON = "application/x-ndjson"
_ERR = {"content": {"application/json": {"schema": ERROR_SCHEMA}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or bad token", **_ERR}, 403: {"description": "role refused", **_ERR},
    404: {"description": "unknown image", **_ERR}, 413: {"description": "upload over the limit", **_ERR},
    422: {"description": "invalid input (a bad CID among them)", **_ERR},
    507: {"description": "the block store is full", **_ERR},
}
_CID = Annotated[str, Path(min_length=1, max_length=128, description="Image CID (any multibase).")]


@dataclass
class ImagesDeps:
    store: EmbeddedStore
    service: ImageService
    tokens: TokenService


def build_deps(settings: Settings, store: EmbeddedStore | None = None,
               tokens: TokenService | None = None) -> ImagesDeps:
    from hcp.store.db import engine_for, migrate

    if store is None:
        engine = engine_for(settings.resolved_database_url)  # the process's one engine
        migrate(engine)
        store = EmbeddedStore.from_settings(settings, engine)
    tokens = tokens or TokenService.from_settings(settings)
    return ImagesDeps(store, ImageService(store, ImageCatalog(store.engine)), tokens)


class _Progress:
    """Bytes the import has read so far, for NDJSON progress lines."""

    def __init__(self, stream, total: int) -> None:  # type: ignore[no-untyped-def]
        self.stream, self.total, self.read_bytes = stream, total, 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.read_bytes += len(data)
        return data


def router(settings: Settings, limits: RequestLimits | None = None, deps: ImagesDeps | None = None,
           store: EmbeddedStore | None = None) -> APIRouter:
    """Everything hcp's image node serves, on one router for the platform's ingress.

    ``limits``: the ingress's one limiter counts the image API's calls; the Kubo RPC verbs and
    the block gateway an agent pulls an image through (thousands of block reads) stay out."""
    d = deps or build_deps(settings, store)
    svc, tokens = d.service, d.tokens
    anyone = principal_dependency(tokens)
    uploader = require_roles(tokens, Role.CUSTOMER, Role.PROVIDER, Role.ADMIN)
    keeper = require_roles(tokens, Role.PROVIDER, Role.ADMIN)
    Anyone = Annotated[Principal, Depends(anyone)]
    AsUploader = Annotated[Principal, Depends(uploader)]
    AsKeeper = Annotated[Principal, Depends(keeper)]
    limit = settings.images.upload_max_bytes

    r = APIRouter()
    api = APIRouter(prefix=PREFIX, tags=["images"], responses=_RESPONSES,
                    dependencies=[] if limits is None else [Depends(rate_guard(tokens, limits))])

    @api.post("/upload", status_code=201, summary="Upload a `docker save` archive (multipart "
              "field `image`); `Accept: application/x-ndjson` streams import progress")
    async def upload(request: Request, who: AsUploader,
                     name: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
                     tag: Annotated[list[str] | None, Query(max_length=32)] = None,
                     accept: Annotated[str | None, Header()] = None) -> Response:
        parts = await read_parts(request, limit, max_parts=4)
        image = next((p for p in parts if p.field in ("image", "file")), None)
        for p in parts:
            if p is not image:
                p.file.close()
        if image is None:
            raise ValidationError("the upload needs a file part named 'image'")
        for t in tag or []:
            if not t or len(t) > 255 or any(c.isspace() for c in t):
                raise ValidationError(f"bad tag {t!r}")
        progress = _Progress(image.file, image.size)

        def work() -> dict[str, Any]:
            try:
                stored, info = svc.push_archive(progress, who.subject, name, tag)  # type: ignore[arg-type]
            finally:
                image.file.close()
            return {**info.to_dict(), "received_bytes": image.size,
                    "blobs": 1 + len(stored.layers)}

        if accept and NDJSON in accept:
            return StreamingResponse(_progress_lines(work, progress), media_type=NDJSON,
                                     status_code=201)
        return JSONResponse(await run_in_threadpool(work), status_code=201)

    @api.get("", summary="Images, most used first")
    def list_images(_: Anyone,
                    name: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
                    uploader: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50,
                    offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> dict[str, Any]:
        return {"items": [i.to_dict() for i in svc.list(name, uploader, limit, offset)]}

    @api.get("/{cid}", summary="One image's metadata")
    def get_image(cid: _CID, _: Anyone) -> dict[str, Any]:
        info = svc.get(cid)
        return {**info.to_dict(), "pinned": d.store.is_pinned(parse_cid(info.cid))}

    peers = settings.images.peers

    @api.post("/{cid}/pin", summary="Pin an image on this node (providers, admins); missing "
              "blocks are fetched from HCP_IMAGES__PEERS")
    def pin(cid: _CID, who: AsKeeper) -> dict[str, Any]:
        c = normalize(cid)
        fetcher = None
        if peers:
            from hcp.images.fetcher import GatewayFetcher

            fetcher = GatewayFetcher(peers, settings.images.fetch_timeout_seconds,
                                     settings.images.fetch_parallelism)
        try:
            report = svc.pull(c, fetcher, pinned_by=who.subject)
        finally:
            if fetcher is not None:
                fetcher.close()
        return {"cid": c, "pinned": True, "fetched_blocks": report.fetched if report else 0}

    @api.delete("/{cid}/pin", summary="Unpin an image on this node (providers, admins)")
    def unpin(cid: _CID, _: AsKeeper) -> dict[str, Any]:
        c = parse_cid(cid)
        return {"cid": str(c), "pinned": False, "was_pinned": d.store.unpin(c)}

    r.include_router(api)
    rpc_auth = None if settings.images.rpc_public else keeper
    r.include_router(kubo_router(d.store, rpc_auth, limit))
    r.include_router(gateway_router(d.store))
    return r


async def _progress_lines(work, progress: _Progress) -> AsyncIterator[bytes]:  # type: ignore[no-untyped-def]
    result: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            result["ok"] = work()
        except HcpError as exc:
            result["error"] = exc.to_dict()
        except Exception as exc:  # noqa: BLE001  (the status is sent: the error goes in the stream)
            result["error"] = {"error": "internal_error", "detail": type(exc).__name__}
        finally:
            done.set()

    task = asyncio.get_running_loop().run_in_executor(None, run)
    while not done.is_set():
        yield (json.dumps({"event": "progress", "bytes": progress.read_bytes,
                           "total": progress.total}) + "\n").encode()
        await asyncio.sleep(0.5)
    await task
    if "error" in result:
        yield (json.dumps({"event": "error", **result["error"]}) + "\n").encode()
    else:
        yield (json.dumps({"event": "done", **result["ok"]}) + "\n").encode()
