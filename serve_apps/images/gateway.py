"""The IPFS Trustless Gateway on hcp's node: ``GET /ipfs/{cid}[/path]``.

- ``Accept: application/vnd.ipld.raw`` (or ``?format=raw``): the one block, verified;
- ``Accept: application/vnd.ipld.car`` (or ``?format=car``): the DAG as a CARv1 stream
  (``dag-scope=all``, depth first);
- otherwise the UnixFS file's bytes, with ``Range: bytes=a-b`` answered 206 from only the
  blocks the range touches.

Content-addressed answers are immutable, so they are public (any peer verifies them against
the CID) and cacheable forever.
"""

# No `from __future__ import annotations` (FastAPI inspects the signatures at runtime).

import re
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from hcp.errors import RangeNotSatisfiableError, ValidationError
from hcp.images.car import CAR_MEDIA_TYPE, export_car
from hcp.images.cids import Cid, parse_cid
from hcp.images.exporter import file_size, is_directory, resolve_path
from hcp.images.fetcher import RAW_MEDIA_TYPE
from hcp.images.store.embedded import EmbeddedStore

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_IMMUTABLE = "public, max-age=29030400, immutable"


def _format(accept: str | None, fmt: str | None) -> str:
    if fmt:
        if fmt not in ("raw", "car"):
            raise ValidationError("format must be raw or car", format=fmt)
        return fmt
    for item in (accept or "").split(","):
        media = item.split(";")[0].strip().lower()
        if media == RAW_MEDIA_TYPE:
            return "raw"
        if media == CAR_MEDIA_TYPE:
            return "car"
    return "file"


def _range(header: str, size: int) -> tuple[int, int]:
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        raise RangeNotSatisfiableError("only one range of the form bytes=a-b is served",
                                       size=size)
    if not m.group(1):  # suffix: the last N bytes
        n = int(m.group(2))
        start, end = max(size - n, 0), size - 1
    else:
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiableError(f"range outside the file's {size} bytes", size=size)
    return start, end


def gateway_router(store: EmbeddedStore) -> APIRouter:
    r = APIRouter(tags=["gateway"])

    def resolve(cid: str, path: str) -> Cid:
        root = parse_cid(cid)
        return resolve_path(root, path, store.get_block) if path.strip("/") else root

    @r.get("/ipfs/{cid}", summary="Trustless gateway")
    @r.head("/ipfs/{cid}", include_in_schema=False)  # one documented operation, not two with one id
    @r.api_route("/ipfs/{cid}/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    def ipfs(
        request: Request,
        cid: str,
        path: str = "",
        accept: Annotated[str | None, Header()] = None,
        range_header: Annotated[str | None, Header(alias="range")] = None,
        fmt: Annotated[str | None, Query(alias="format", max_length=8)] = None,
    ) -> Response:
        target = resolve(cid, path)
        kind = _format(accept, fmt)
        head = request.method == "HEAD"
        etag = f'"{target}.{kind}"'
        common = {"Cache-Control": _IMMUTABLE, "X-Ipfs-Path": f"/ipfs/{cid}/{path}".rstrip("/"),
                  "X-Content-Type-Options": "nosniff", "ETag": etag}
        if kind == "raw":
            block = store.get_block(target)
            return Response(b"" if head else block, media_type=RAW_MEDIA_TYPE,
                            headers={**common, "Content-Length": str(len(block))})
        if kind == "car":
            if head:
                return Response(b"", media_type=f"{CAR_MEDIA_TYPE}; version=1", headers=common)
            return StreamingResponse(export_car(target, store.get_block),
                                     media_type=f"{CAR_MEDIA_TYPE}; version=1", headers=common)
        if is_directory(target, store.get_block):
            raise ValidationError(f"{target} is a directory: ask for format=car or a path in it",
                                  cid=str(target))
        size = file_size(target, store.get_block)
        headers = {**common, "Accept-Ranges": "bytes"}
        if range_header:
            start, end = _range(range_header, size)
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            headers["Content-Length"] = str(end - start + 1)
            body = b"" if head else b"".join(store.cat(target, start, end - start + 1))
            return Response(body, status_code=206, media_type="application/octet-stream",
                            headers=headers)
        headers["Content-Length"] = str(size)
        if head:
            return Response(b"", media_type="application/octet-stream", headers=headers)
        return StreamingResponse(store.cat(target), media_type="application/octet-stream",
                                 headers=headers)

    return r
