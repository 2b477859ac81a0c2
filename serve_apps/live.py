"""``WS /api/v1/live``: workload status and switch events as they land in the event log.

Auth: ``?token=JWT`` or, without it, a first message ``{"token": "JWT"}`` within 10 s.
Admins get every workload and switch event; customers only their own workloads' events;
other roles are refused (close code 4403, after an ``{"error", "detail"}`` message).
Messages: ``{"type": "welcome", "cursor"}``, ``{"type": "event", "event": {...}}`` and, when
nothing happened for a heartbeat period, ``{"type": "heartbeat", "at", "cursor"}``. A client
that reconnects with ``?after=<cursor>`` misses nothing still in the log.

One poller per replica reads the log and keeps recent events in memory; each connection
keeps its own cursor and catches up from the store when it is behind that buffer.
"""

# No `from __future__ import annotations`: FastAPI resolves the local `Client` alias at runtime.

import asyncio
import contextlib
import json
import logging
import re
from collections import deque
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from hcp.auth.tokens import Principal, TokenService
from hcp.errors import AuthenticationError, HcpError, PermissionDeniedError, ValidationError
from serve_apps.access import Action, allowed
from serve_apps.deps import check_rate
from serve_apps.eventlog import SWITCH_KIND, WORKLOAD_KIND
from serve_apps.services import ApiServices, EventFeed

log = logging.getLogger(__name__)

_AUTH_TIMEOUT_S = 10.0
_CLOSE_CODES = {401: 4401, 403: 4403, 422: 4422, 429: 4429}


class LiveHub:
    """Polls the event log once for all connections of this replica."""

    def __init__(
        self, feed: EventFeed, poll_s: float, buffer: int = 10_000, batch: int = 1000
    ) -> None:
        self._feed = feed
        self._poll_s = poll_s
        self._batch = batch
        self._buf: deque[dict[str, Any]] = deque(maxlen=buffer)
        self._floor = 0  # every event with id > floor is in the buffer or not yet read
        self._last = 0
        self._cond = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def ensure_started(self) -> int:
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        await self._started.wait()
        return self._last

    async def _run(self) -> None:
        while not self._started.is_set():
            try:
                self._last = self._floor = await asyncio.to_thread(self._feed.last_id)
                self._started.set()
            except Exception:  # the store is down: connections wait for it, the poller retries
                log.exception("live feed cannot read the event log; retrying")
                await asyncio.sleep(max(1.0, self._poll_s))
        while True:
            try:
                rows = await asyncio.to_thread(self._feed.after, self._last, self._batch)
            except Exception:  # a failed poll must not end the feed for every connection
                log.exception("live feed poll failed; retrying")
                rows = []
            if rows:
                for row in rows:
                    if len(self._buf) == self._buf.maxlen:
                        self._floor = self._buf[0]["id"]
                    self._buf.append(row)
                self._last = rows[-1]["id"]
                async with self._cond:
                    self._cond.notify_all()
            if len(rows) < self._batch:
                await asyncio.sleep(self._poll_s)

    async def read_after(self, cursor: int, timeout: float) -> list[dict[str, Any]]:
        """Events with id > cursor, oldest first; empty if none came within ``timeout``."""
        if cursor < self._floor:
            return await asyncio.to_thread(self._feed.after, cursor, self._batch)
        events = [e for e in self._buf if e["id"] > cursor]
        if events:
            return events
        async with self._cond:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cond.wait(), timeout)
        return [e for e in self._buf if e["id"] > cursor]


def visible(principal: Principal, event: dict[str, Any]) -> bool:
    """Admins see all; customers their own workloads' events only."""
    if event["kind"] == WORKLOAD_KIND:
        if allowed(principal.role, Action.VIEW_ALL_WORKLOADS):
            return True
        owner = (event.get("payload") or {}).get("owner")
        return allowed(principal.role, Action.VIEW_OWN_WORKLOADS) and owner == principal.subject
    if event["kind"] == SWITCH_KIND:
        return allowed(principal.role, Action.VIEW_RESOURCES)
    return False


def live_router(
    services: ApiServices,
    tokens: TokenService,
    hub: LiveHub,
    heartbeat_s: float,
    rate_limit: int,
    rate_window_s: int,
) -> APIRouter:
    r = APIRouter(tags=["live"])

    async def authenticate(ws: WebSocket, token: str | None) -> Principal:
        if not token:
            try:
                first = await asyncio.wait_for(ws.receive_text(), _AUTH_TIMEOUT_S)
                token = json.loads(first).get("token")
            except (TimeoutError, ValueError, AttributeError):
                token = None
        if not token or not isinstance(token, str):
            raise AuthenticationError(
                'send the bearer token as ?token= or a first message {"token": ...}'
            )
        principal = tokens.verify(token)
        if not allowed(principal.role, Action.VIEW_OWN_WORKLOADS):
            raise PermissionDeniedError(f"role {principal.role.value!r} may not watch workloads")
        await check_rate(services, principal, rate_limit, rate_window_s)
        return principal

    @r.websocket("/api/v1/live")
    async def live(ws: WebSocket, token: str | None = None, after: str | None = None) -> None:
        await ws.accept()
        try:
            principal = await authenticate(ws, token)
            if after is not None and not re.fullmatch(r"[0-9]{1,18}", after):
                raise ValidationError("after must be an event id (digits)", after=after)
        except HcpError as exc:
            await ws.send_json(exc.to_dict())
            await ws.close(code=_CLOSE_CODES.get(exc.http_status, 1011))
            return
        except WebSocketDisconnect:
            return
        latest = await hub.ensure_started()
        cursor = latest if after is None else int(after)
        await ws.send_json(
            {
                "type": "welcome",
                "subject": principal.subject,
                "role": principal.role.value,
                "cursor": cursor,
            }
        )
        receiver = asyncio.create_task(_drain(ws))
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        try:
            while not receiver.done():
                wait = max(0.0, last_sent + heartbeat_s - loop.time())
                for e in await hub.read_after(cursor, wait):
                    cursor = max(cursor, e["id"])
                    if visible(principal, e):
                        await ws.send_json({"type": "event", "event": e})
                        last_sent = loop.time()
                if loop.time() - last_sent >= heartbeat_s:
                    last_sent = loop.time()
                    await ws.send_json(
                        {
                            "type": "heartbeat",
                            "at": services.clock.now().isoformat(),
                            "cursor": cursor,
                        }
                    )
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away mid-send
        finally:
            receiver.cancel()

    return r


async def _drain(ws: WebSocket) -> None:
    """Read (and ignore) client messages until it disconnects, so a hang-up is noticed."""
    try:
        while True:
            await ws.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return
