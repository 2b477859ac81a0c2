"""Streaming ``multipart/form-data`` for large uploads: the body is bounded while it arrives
(413 as soon as it passes the limit, or before reading when Content-Length says so) and each
file part goes to a spooled temporary file (memory up to 8 MiB, then disk)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import IO
from urllib.parse import unquote

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from hcp.errors import UploadTooLargeError, ValidationError

_SPOOL = 8 << 20


@dataclass
class Part:
    field: str
    filename: str | None
    content_type: str
    file: IO[bytes]
    size: int


def check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise ValidationError("bad Content-Length") from None
        if n > limit:
            raise UploadTooLargeError(f"the body of {n} bytes is over the {limit}-byte limit",
                                      limit_bytes=limit)


async def read_parts(request: Request, limit: int, max_parts: int = 10_000) -> list[Part]:
    check_declared_length(request, limit)
    ctype, opts = parse_options_header(request.headers.get("content-type", ""))
    boundary = opts.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise ValidationError("the body must be multipart/form-data with a boundary")
    parts: list[Part] = []
    state: dict = {"headers": {}, "field": b"", "value": b"", "part": None}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        if len(parts) >= max_parts:
            raise ValidationError(f"at most {max_parts} parts")
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        raw = disp.get(b"filename")
        filename = unquote(raw.decode("utf-8", "replace")) if raw is not None else None
        ctype_part = state["headers"].get(b"content-type", b"application/octet-stream").decode("latin-1")
        state["part"] = Part(name, filename, ctype_part,
                             tempfile.SpooledTemporaryFile(max_size=_SPOOL), 0)  # noqa: SIM115
        state["headers"] = {}

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part: Part = state["part"]
        part.file.write(data[start:end])
        part.size += end - start

    def on_part_end() -> None:
        part: Part = state["part"]
        part.file.seek(0)
        parts.append(part)
        state["part"] = None

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end})
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise UploadTooLargeError(f"the body is over the {limit}-byte limit", limit_bytes=limit)
            parser.write(chunk)
        parser.finalize()
    except (UploadTooLargeError, ValidationError):
        for p in parts:
            p.file.close()
        raise
    except Exception as exc:  # python-multipart's parse errors
        for p in parts:
            p.file.close()
        raise ValidationError(f"malformed multipart body: {type(exc).__name__}") from exc
    return parts
