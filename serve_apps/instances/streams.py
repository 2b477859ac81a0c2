"""``WS /api/v1/instances/{id}/logs`` and ``/metrics``: live, resumable, bounded.

Auth: ``?token=JWT`` or a first message ``{"token": "JWT"}`` within 10 s; the renter, the
job's provider and admins may watch (anyone else: ``instance_not_found``, close 4404).
``?cursor=N`` resumes after line (or sample) ``N``; without it the history is sent from the
start. Messages (each at most ``HCP_AGENT__WS_MAX_BYTES`` of JSON):
``{"type": "welcome", "instance", "cursor", "state"}``, ``{"type": "lines"|"samples",
"items": [...], "cursor"}``, ``{"type": "heartbeat", "at", "cursor"}`` whenever nothing was
sent for ``HCP_API_WS_HEARTBEAT_SECONDS`` (idle proxies and clients keep the socket open,
and a client can tell a quiet container from a dead socket), and ``{"type": "end",
"cursor", "state"}`` once the container is gone and everything was sent (close 1000). The
history stays readable after the container is gone. When the token expires the socket is
closed (4401) after ``{"error": "token_expired"}``: no line reaches an expired token.

Lines carry their per-job ``seq``; the cursor is the last seq sent, so a reconnect with it
neither loses nor repeats a line.
"""

# No `from __future__ import annotations`: FastAPI reads the WebSocket parameter at runtime.

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from hcp.agent.messages import Phase
from hcp.auth.tokens import Principal
from hcp.config import Settings
from hcp.errors import (
    AuthenticationError,
    HcpError,
    InstanceNotFoundError,
    JobNotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from hcp.jsonsafe import JsonLimits
from hcp.jsonsafe import loads as safe_loads
from hcp.marketplace.jobs import TERMINAL
from serve_apps.ratelimit import RequestLimits

log = logging.getLogger(__name__)

_AUTH_TIMEOUT_S = 10.0
_AUTH_MESSAGE = JsonLimits(max_bytes=8192, max_depth=2)
_CLOSE_CODES = {401: 4401, 403: 4403, 404: 4404, 422: 4422, 429: 4429}
_FINISHED_CHECK_S = 1.0


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def pack(items: list[dict[str, Any]], kind: str, max_bytes: int) -> list[tuple[str, int]]:
    """``items`` as messages of at most ``max_bytes`` each: (JSON text, cursor after it).
    A single item too large for a message is sent with its text cut (``truncated``)."""
    out: list[tuple[str, int]] = []
    batch: list[str] = []
    size = 0
    prev = -1
    overhead = len(_dumps({"type": kind, "items": [], "cursor": 2**63})) + 1

    def flush(cursor: int) -> None:
        nonlocal batch, size
        out.append((f'{{"type":"{kind}","items":[{",".join(batch)}],"cursor":{cursor}}}', cursor))
        batch, size = [], 0

    for item in items:
        text = _dumps(item)
        if len(text.encode()) + overhead > max_bytes:
            keep = max(0, (max_bytes - overhead - 512) // 6)  # escapes may take 6 bytes a char
            item = {**item, "text": str(item.get("text", ""))[:keep], "truncated": True}
            text = _dumps(item)
        n = len(text.encode()) + 1
        if batch and size + n + overhead > max_bytes:
            flush(prev)
        batch.append(text)
        size += n
        prev = int(item["seq"])
    if batch:
        flush(prev)
    return out


def stream_routes(r: APIRouter, d: Any, limits: RequestLimits, settings: Settings) -> None:
    heartbeat_s = settings.api.ws_heartbeat_seconds
    cfg = settings.agent

    async def authenticate(ws: WebSocket, token: str | None) -> Principal:
        if not token:
            try:
                first = await asyncio.wait_for(ws.receive_text(), _AUTH_TIMEOUT_S)
                token = safe_loads(first, _AUTH_MESSAGE, what="message").get("token")
            except (TimeoutError, ValueError, AttributeError, HcpError):
                token = None
        if not token or not isinstance(token, str):
            raise AuthenticationError('send the bearer token as ?token= or a first message {"token": ...}')
        principal = d.tokens.verify(token)
        await limits.check(principal)
        return principal

    def party(who: Principal, instance_id: str) -> None:
        try:
            job = d.market.get_job(who, instance_id)
        except (JobNotFoundError, PermissionDeniedError):
            raise InstanceNotFoundError(f"no instance {instance_id!r}", instance_id=instance_id) from None
        if not (who.is_admin or who.subject in (job.renter, job.provider)):
            raise InstanceNotFoundError(f"no instance {instance_id!r}", instance_id=instance_id)

    def state(who: Principal, instance_id: str) -> tuple[str, bool]:
        """(instance state, whether nothing more will be written)."""
        from serve_apps.instances.schemas import instance_state

        job = d.market.get_job(who, instance_id)
        run = d.runs.get_run(instance_id)
        finished = (run is not None and run.phase in (Phase.SETTLED, Phase.FAILED)) or (
            run is None and job.status in TERMINAL)
        return instance_state(job, run), finished

    async def serve(ws: WebSocket, instance_id: str, token: str | None, cursor: str | None,
                    kind: str, read: Callable[[str, int, int], list[Any]]) -> None:
        await ws.accept()
        try:
            principal = await authenticate(ws, token)
            if cursor is not None and not re.fullmatch(r"-1|[0-9]{1,18}", cursor):
                raise ValidationError("cursor must be a seq (digits) or -1", cursor=cursor)
            if not re.fullmatch(r"[A-Za-z0-9-]{1,36}", instance_id):
                raise InstanceNotFoundError("no such instance")
            await asyncio.to_thread(party, principal, instance_id)
            now_state, _ = await asyncio.to_thread(state, principal, instance_id)
        except HcpError as exc:
            await ws.send_json(exc.to_dict())
            await ws.close(code=_CLOSE_CODES.get(exc.http_status, 1011))
            return
        except WebSocketDisconnect:
            return
        pos = -1 if cursor is None else int(cursor)
        await ws.send_text(_dumps({"type": "welcome", "instance": instance_id, "cursor": pos,
                                   "state": now_state}))
        receiver = asyncio.create_task(_drain(ws))
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        checked = 0.0
        expires = principal.expires_at
        try:
            while not receiver.done():
                if expires is not None and d.clock.now() >= expires:
                    await ws.send_json({"error": "token_expired",
                                        "detail": "the token expired; reconnect with a new one"})
                    await ws.close(code=_CLOSE_CODES[401])
                    return
                items = await asyncio.to_thread(read, instance_id, pos, cfg.ws_max_items)
                if items:
                    for text, after in pack([i.to_dict() for i in items], kind, cfg.ws_max_bytes):
                        await ws.send_text(text)
                        pos = after
                    last_sent = loop.time()
                    if len(items) == cfg.ws_max_items:
                        continue
                elif loop.time() - checked >= _FINISHED_CHECK_S:
                    checked = loop.time()
                    now_state, finished = await asyncio.to_thread(state, principal, instance_id)
                    # Finished means the agent wrote its last line before saying so: one more
                    # read catches lines stored since the previous one.
                    if finished and not await asyncio.to_thread(read, instance_id, pos, 1):
                        await ws.send_text(_dumps({"type": "end", "cursor": pos, "state": now_state}))
                        await ws.close(code=1000)
                        return
                    if finished:
                        checked = 0.0
                        continue
                if loop.time() - last_sent >= heartbeat_s:
                    last_sent = loop.time()
                    await ws.send_text(_dumps({"type": "heartbeat", "at": d.clock.now().isoformat(),
                                               "cursor": pos}))
                await asyncio.wait({receiver}, timeout=min(cfg.ws_poll_seconds, heartbeat_s))
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away mid-send
        finally:
            receiver.cancel()

    @r.websocket("/api/v1/instances/{instance_id}/logs")
    async def logs(ws: WebSocket, instance_id: str, token: str | None = None,
                   cursor: str | None = None) -> None:
        await serve(ws, instance_id, token, cursor, "lines", d.runs.read_logs)

    @r.websocket("/api/v1/instances/{instance_id}/metrics")
    async def metrics(ws: WebSocket, instance_id: str, token: str | None = None,
                      cursor: str | None = None) -> None:
        await serve(ws, instance_id, token, cursor, "samples", d.runs.read_metrics)


async def _drain(ws: WebSocket) -> None:
    """Read (and ignore) client messages until it disconnects, so a hang-up is noticed."""
    try:
        while True:
            await ws.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return
