"""The Kubo RPC subset on hcp's node: ``/api/v0/add``, ``cat``, ``block/get|put|stat``,
``pin/add|rm|ls``, ``repo/gc``, ``repo/stat``, ``version``; every verb is a POST, as Kubo's.

Answers have Kubo's shapes (NDJSON where Kubo streams), so Kubo's own clients work unchanged.
Refusals keep Kubo's error body (``Message``, ``Code``, ``Type``) and add hcp's ``error`` code,
with hcp's statuses (422 bad input, 404 unknown block, 507 store full) instead of Kubo's 500s.
"""

# No `from __future__ import annotations`: FastAPI resolves the dependency aliases at runtime.

import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from hcp.errors import HcpError, ValidationError
from hcp.images.cids import RAW, Cid, parse_cid
from hcp.images.directory import Entry, make_tree
from hcp.images.importer import FileImporter
from hcp.images.params import MAX_LINKS, ImportParams
from hcp.images.store.embedded import EmbeddedStore
from serve_apps.images.multipart import Part, read_parts

NDJSON = "application/x-ndjson"
KUBO_VERSION = "0.38.0"  # the Kubo release whose RPC shapes this subset follows


def kubo_error(exc: HcpError) -> JSONResponse:
    body = {"Message": exc.detail, "Code": 0, "Type": "error", **exc.to_dict()}
    return JSONResponse(body, status_code=exc.http_status)


class KuboRoute(APIRoute):
    """Typed errors leave in Kubo's error shape (plus hcp's code), on every RPC route."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except HcpError as exc:
                return kubo_error(exc)

        return route


def _cid_arg(arg: str) -> Cid:
    # Kubo takes "/ipfs/<cid>" as well as a bare CID.
    text = arg.removeprefix("/ipfs/")
    return parse_cid(text.split("/", 1)[0])


def _bool(v: str | None, default: bool) -> bool:
    if v is None or v == "":
        return default
    return v.lower() in ("1", "true", "yes")


def _params(cid_version: int | None, raw_leaves: str | None, chunker: str | None,
            max_links: int | None) -> ImportParams:
    chunk = 262144
    if chunker:
        if not chunker.startswith("size-"):
            raise ValidationError("only fixed-size chunkers (size-N) are supported", chunker=chunker)
        try:
            chunk = int(chunker[5:])
        except ValueError:
            raise ValidationError("bad chunker size", chunker=chunker) from None
    return ImportParams.kubo(cid_version=cid_version or 0,
                             raw_leaves=None if raw_leaves is None else _bool(raw_leaves, False),
                             chunk_size=chunk, max_links=max_links or MAX_LINKS)


def kubo_router(store: EmbeddedStore, auth: Callable[..., Any] | None, upload_limit: int) -> APIRouter:
    deps = [Depends(auth)] if auth is not None else []
    r = APIRouter(prefix="/api/v0", tags=["kubo-rpc"], route_class=KuboRoute, dependencies=deps)

    @r.post("/version")
    def version() -> dict[str, Any]:
        return {"Version": KUBO_VERSION, "Commit": "hcp", "Repo": "16", "System": "hcp", "Golang": ""}

    @r.post("/add", summary="Add files (multipart), as `ipfs add`")
    async def add(
        request: Request,
        cid_version: Annotated[int | None, Query(alias="cid-version", ge=0, le=1)] = None,
        raw_leaves: Annotated[str | None, Query(alias="raw-leaves")] = None,
        chunker: Annotated[str | None, Query(max_length=32)] = None,
        max_links: Annotated[int | None, Query(alias="max-file-links", ge=2, le=4096)] = None,
        pin: Annotated[str | None, Query()] = None,
        wrap: Annotated[str | None, Query(alias="wrap-with-directory")] = None,
        hash: Annotated[str | None, Query()] = None,
        trickle: Annotated[str | None, Query()] = None,
        progress: Annotated[str | None, Query()] = None,
    ) -> Response:
        if hash not in (None, "", "sha2-256"):
            raise ValidationError("only sha2-256 is supported", hash=hash)
        if _bool(trickle, False):
            raise ValidationError("the trickle layout is not supported (balanced only)")
        params = _params(cid_version, raw_leaves, chunker, max_links)
        parts = await read_parts(request, upload_limit)
        try:
            lines = await run_in_threadpool(_add_parts, store, parts, params, _bool(pin, True),
                                            _bool(wrap, False))
        finally:
            for p in parts:
                p.file.close()
        return Response("".join(json.dumps(line) + "\n" for line in lines), media_type=NDJSON)

    @r.post("/cat")
    def cat(arg: Annotated[str, Query(max_length=300)], offset: Annotated[int, Query(ge=0)] = 0,
            length: Annotated[int | None, Query(ge=0)] = None) -> Response:
        cid = _cid_arg(arg)
        it = store.cat(cid, offset, length)
        first = next(it, b"")  # a missing root or tampered block fails here, before 200
        return StreamingResponse(_chain(first, it), media_type="text/plain")

    @r.post("/block/get")
    def block_get(arg: Annotated[str, Query(max_length=300)]) -> Response:
        return Response(store.get_block(_cid_arg(arg)), media_type="application/octet-stream")

    @r.post("/block/stat")
    def block_stat(arg: Annotated[str, Query(max_length=300)]) -> dict[str, Any]:
        cid = _cid_arg(arg)
        return {"Key": str(cid), "Size": len(store.get_block(cid))}

    @r.post("/block/put")
    async def block_put(
        request: Request,
        cid_codec: Annotated[str | None, Query(alias="cid-codec", max_length=32)] = None,
        fmt: Annotated[str | None, Query(alias="format", max_length=32)] = None,
        mhtype: Annotated[str | None, Query(max_length=32)] = None,
        pin: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        codec_name = cid_codec or {"v0": "dag-pb", "protobuf": "dag-pb"}.get(fmt or "", fmt) or "raw"
        codecs = {"raw": RAW, "dag-pb": 0x70}
        if codec_name not in codecs:
            raise ValidationError("block/put stores raw and dag-pb blocks", cid_codec=codec_name)
        if mhtype not in (None, "", "sha2-256"):
            raise ValidationError("only sha2-256 is supported", mhtype=mhtype)
        parts = await read_parts(request, 2 * 1024 * 1024 + 64 * 1024, max_parts=1)
        if not parts:
            raise ValidationError("block/put needs one file part")
        data = parts[0].file.read()
        parts[0].file.close()
        version = 0 if fmt in ("v0", "protobuf") else 1
        cid = await run_in_threadpool(store.put_block, data, codecs[codec_name], version)
        if _bool(pin, False):
            await run_in_threadpool(store.pin, cid)
        return {"Key": str(cid), "Size": len(data)}

    @r.post("/pin/add")
    def pin_add(arg: Annotated[list[str], Query(max_length=100)],
                recursive: Annotated[str | None, Query()] = None) -> dict[str, Any]:
        if not _bool(recursive, True):
            raise ValidationError("only recursive pins are kept")
        cids = [_cid_arg(a) for a in arg]
        for cid in cids:
            store.pin(cid)
        return {"Pins": [str(c) for c in cids]}

    @r.post("/pin/rm")
    def pin_rm(arg: Annotated[list[str], Query(max_length=100)]) -> dict[str, Any]:
        cids = [_cid_arg(a) for a in arg]
        missing = [str(c) for c in cids if not store.is_pinned(c)]
        if missing:
            raise ValidationError(f"not pinned: {missing[0]}", cid=missing[0])
        for cid in cids:
            store.unpin(cid)
        return {"Pins": [str(c) for c in cids]}

    @r.post("/pin/ls")
    def pin_ls(arg: Annotated[list[str] | None, Query(max_length=100)] = None,
               type: Annotated[str | None, Query()] = None,
               stream: Annotated[str | None, Query()] = None) -> Response:
        if type not in (None, "", "all", "recursive"):
            return _pins_response([], _bool(stream, False))
        pins = {str(p.cid) for p in store.pins()}
        if arg:
            wanted = [str(_cid_arg(a)) for a in arg]
            missing = [c for c in wanted if c not in pins]
            if missing:
                raise ValidationError(f"path '{missing[0]}' is not pinned", cid=missing[0])
            pins = set(wanted)
        return _pins_response(sorted(pins), _bool(stream, False))

    @r.post("/repo/gc")
    def repo_gc() -> Response:
        report = store.gc()
        body = "".join(json.dumps({"Key": {"/": str(c)}}) + "\n" for c in report.removed)
        return Response(body, media_type=NDJSON)

    @r.post("/repo/stat")
    def repo_stat() -> dict[str, Any]:
        s = store.stat()
        # RepoPath is left empty: error and status bodies never name a path of this host.
        return {"RepoSize": s.used_bytes, "StorageMax": s.cap_bytes, "NumObjects": s.blocks,
                "RepoPath": "", "Version": "fs-repo@16"}

    return r


def _pins_response(pins: list[str], stream: bool) -> Response:
    if stream:
        return Response("".join(json.dumps({"Cid": c, "Type": "recursive"}) + "\n" for c in pins),
                        media_type=NDJSON)
    return JSONResponse({"Keys": {c: {"Type": "recursive"} for c in pins}})


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _add_parts(store: EmbeddedStore, parts: list[Part], params: ImportParams, pin: bool,
               wrap: bool) -> list[dict[str, Any]]:
    """Kubo's add: one line per file, then one per directory (top last)."""
    lines: list[dict[str, Any]] = []
    files = [p for p in parts if not p.content_type.startswith("application/x-directory")]
    if not files:
        raise ValidationError("add needs at least one file part")
    with store.session() as s:
        entries: dict[str, Entry] = {}
        results = []
        for part in files:
            imp = FileImporter(s.put, params)
            while piece := part.file.read(1 << 20):
                imp.write(piece)
            f = imp.finish()
            path = (part.filename or "").strip("/")
            results.append((path, f))
            lines.append({"Name": path or str(f.cid), "Hash": str(f.cid), "Size": str(f.tsize)})
            if path:
                entries[path] = Entry(f.cid, f.tsize)
        roots: list[Cid] = []
        nested = any("/" in p for p in entries)
        if entries and (wrap or nested):
            dirs = _directories(entries, s.put, params, wrap)
            for name, child in dirs:
                lines.append({"Name": name, "Hash": str(child.cid), "Size": str(child.tsize)})
            roots.append(dirs[-1][1].cid)
        else:
            roots.extend(f.cid for _, f in results)
        for root in dict.fromkeys(roots):
            s.commit(root, pin=pin, params=params)
    return lines


def _directories(entries: dict[str, Entry], put, params: ImportParams, wrap: bool):  # type: ignore[no-untyped-def]
    """Every folder of the added paths, deepest first; ``wrap`` adds an unnamed top."""
    folders = sorted({"/".join(p.split("/")[:i]) for p in entries for i in range(1, p.count("/") + 1)},
                     key=lambda d: (-d.count("/"), d))
    out = []
    for folder in folders:
        inner = {p[len(folder) + 1:]: e for p, e in entries.items() if p.startswith(folder + "/")}
        out.append((folder, make_tree(inner, put, params.cid_version)))
    if wrap:
        out.append(("", make_tree(entries, put, params.cid_version)))
    return out
