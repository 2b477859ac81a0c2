"""``WS /api/v1/live``: workload status and switch events as they land in the event log.

Auth: ``?token=JWT`` or, without it, a first message ``{"token": "JWT"}`` within 10 s.
Admins get every workload and switch event; customers only their own workloads' events;
other roles are refused (close code 4403, after an ``{"error", "detail"}`` message).
Messages: ``{"type": "welcome", "cursor"}``, ``{"type": "event", "event": {...}}`` and, when
nothing happened for a heartbeat period, ``{"type": "heartbeat", "at", "cursor"}``. A client
that reconnects with ``?after=<cursor>`` misses nothing still in the log.

One poller per replica reads the log and keeps recent events in memory; each connection
keeps its own place and catches up from the store when it is behind that buffer. Events
that commit after an event with a higher id (PostgreSQL) are still delivered: see LiveHub.
"""

# No `from __future__ import annotations`: FastAPI resolves the local `Client` alias at runtime.

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from hcp.auth.tokens import Principal, TokenService
from hcp.errors import AuthenticationError, HcpError, PermissionDeniedError, ValidationError
from hcp.jsonsafe import JsonLimits
from hcp.jsonsafe import loads as safe_loads
from serve_apps.access import Action, allowed
from serve_apps.eventlog import SWITCH_KIND, WORKLOAD_KIND
from serve_apps.ratelimit import RequestLimits
from serve_apps.services import ApiServices, EventFeed

log = logging.getLogger(__name__)

_AUTH_TIMEOUT_S = 10.0
_AUTH_MESSAGE = JsonLimits(max_bytes=8192, max_depth=2)
_CLOSE_CODES = {401: 4401, 403: 4403, 422: 4422, 429: 4429}


@dataclass(frozen=True)
class _Entry:
    pos: int  # the hub's own arrival order (late commits arrive after higher ids)
    event: dict[str, Any]
    watermark: int  # the hub's watermark once this entry was in


class LiveHub:
    """Polls the event log once for all connections of this replica.

    Ids are taken when a transaction starts writing, not when it commits, so on PostgreSQL an
    event can appear after one with a higher id. The hub remembers every id it has passed
    without seeing (a gap) and looks for it again on each poll for ``gap_timeout_s``, after
    which the id is taken as rolled back. Its ``watermark`` is the id below which nothing is
    missing; that is the cursor clients resume from, so a reconnect loses nothing (it may
    repeat events above the cursor: clients dedupe by event id). SQLite serializes writers
    and never leaves gaps.
    """

    def __init__(
        self,
        feed: EventFeed,
        poll_s: float,
        buffer: int = 10_000,
        batch: int = 1000,
        gap_timeout_s: float = 30.0,
        max_gaps: int = 1000,
    ) -> None:
        self._feed = feed
        self._poll_s = poll_s
        self._batch = batch
        self._gap_timeout_s = gap_timeout_s
        self._max_gaps = max_gaps
        self._buf: deque[_Entry] = deque(maxlen=buffer)
        self._pos = 0  # position of the newest entry
        self._last = 0  # highest id read
        self._gaps: dict[int, float] = {}  # id passed but not seen -> when first missed
        self._cond = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    @property
    def watermark(self) -> int:
        """Every event with an id up to this one has been read (or will never exist)."""
        return min(self._gaps) - 1 if self._gaps else self._last

    @property
    def head(self) -> tuple[int, int, int]:
        """(position, highest id read, watermark) now."""
        return self._pos, self._last, self.watermark

    async def ensure_started(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        await self._started.wait()

    async def _run(self) -> None:
        while not self._started.is_set():
            try:
                self._last = await asyncio.to_thread(self._feed.last_id)
                self._started.set()
            except Exception:  # the store is down: connections wait for it, the poller retries
                log.exception("live feed cannot read the event log; retrying")
                await asyncio.sleep(max(1.0, self._poll_s))
        while True:
            try:
                read = await self.poll_once()
            except Exception:  # a failed poll must not end the feed for every connection
                log.exception("live feed poll failed; retrying")
                read = 0
            if read < self._batch:
                await asyncio.sleep(self._poll_s)

    async def poll_once(self) -> int:
        """Read new events and late commits of gaps into the buffer; the ids read."""
        events, ids = await asyncio.to_thread(self._feed.scan, self._last, self._batch)
        now = time.monotonic()
        if ids:
            seen = set(ids)
            for missing in range(self._last + 1, ids[-1]):
                if len(self._gaps) >= self._max_gaps:
                    break
                if missing not in seen:
                    self._gaps[missing] = now
            self._last = ids[-1]
        if self._gaps:
            late, found = await asyncio.to_thread(self._feed.by_ids, sorted(self._gaps))
            for i in found:
                self._gaps.pop(i, None)
            for i, since in list(self._gaps.items()):
                if now - since > self._gap_timeout_s:
                    del self._gaps[i]  # rolled back, or never committed
            events = sorted(late, key=lambda e: e["id"]) + events
        if events:
            mark = self.watermark
            for e in events:
                self._pos += 1
                # A connection that has this entry has every id up to it, not yet the rest.
                self._buf.append(_Entry(self._pos, e, min(mark, e["id"])))
        if events or ids:
            async with self._cond:
                self._cond.notify_all()
        return len(ids)

    async def read(self, pos: int, timeout: float) -> list[_Entry] | None:
        """Entries after position ``pos``, oldest first; empty if none came within
        ``timeout``; None if ``pos`` has left the buffer (catch up from the store)."""
        entries = self._after(pos)
        if entries is None or entries:
            return entries
        async with self._cond:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cond.wait(), timeout)
        return self._after(pos)

    def _after(self, pos: int) -> list[_Entry] | None:
        if self._buf and pos < self._buf[0].pos - 1:
            return None
        if not self._buf or self._buf[-1].pos <= pos:
            return []
        # Positions are consecutive in the buffer: index instead of scanning it.
        return list(itertools.islice(self._buf, pos + 1 - self._buf[0].pos, None))

    def after_from_store(self, after_id: int, upto_id: int) -> list[dict[str, Any]]:
        """Live events with after_id < id <= upto_id from the store, oldest first."""
        out: list[dict[str, Any]] = []
        while True:
            page = self._feed.after(after_id, self._batch)
            out.extend(e for e in page if e["id"] <= upto_id)
            if len(page) < self._batch or not page or page[-1]["id"] >= upto_id:
                return out
            after_id = page[-1]["id"]


class LiveCursor:
    """One connection's place in the feed: what it has been sent, what it resumes from.

    ``cursor`` (sent to the client) is the hub watermark as of the last entry delivered:
    every event with an id up to it has been sent. Events above it that were sent are
    remembered, so catching up from the store never sends one twice.
    """

    def __init__(self, hub: LiveHub, after: int | None) -> None:
        self._hub = hub
        self.pos, last, mark = hub.head
        self.cursor = mark if after is None else after
        # (up to, watermark then) of a pending catch-up from the store.
        self._catch_up: tuple[int, int] | None = None if after is None else (last, mark)
        self._sent: set[int] = set()

    async def next(self, timeout: float) -> list[dict[str, Any]]:
        """The next events for this connection (possibly none within ``timeout``)."""
        if self._catch_up is not None:
            (upto, mark), self._catch_up = self._catch_up, None
            found = []
            if upto > self.cursor:
                found = await asyncio.to_thread(self._hub.after_from_store, self.cursor, upto)
            out = self._fresh(found)
            # Everything the hub had read up to its watermark was committed before the store
            # was read, so none of it is missing now.
            self._advance(mark)
            return out
        entries = await self._hub.read(self.pos, timeout)
        if entries is None:  # fell behind the buffer: the store has everything above cursor
            self.pos, last, mark = self._hub.head
            self._catch_up = (last, mark)
            return await self.next(0)
        out = []
        for entry in entries:
            self.pos = entry.pos
            out.extend(self._fresh([entry.event]))
            self._advance(entry.watermark)
        if self.pos == self._hub.head[0]:
            self._advance(self._hub.watermark)  # caught up: nothing below the hub's is missing
        return out

    def _fresh(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        new = [e for e in events if e["id"] > self.cursor and e["id"] not in self._sent]
        self._sent.update(e["id"] for e in new)
        return new

    def _advance(self, mark: int) -> None:
        if mark > self.cursor:
            self.cursor = mark
            self._sent = {i for i in self._sent if i > mark}


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
    limits: RequestLimits,
) -> APIRouter:
    r = APIRouter(tags=["live"])

    async def authenticate(ws: WebSocket, token: str | None) -> Principal:
        if not token:
            try:
                first = await asyncio.wait_for(ws.receive_text(), _AUTH_TIMEOUT_S)
                token = safe_loads(first, _AUTH_MESSAGE, what="message").get("token")
            except (TimeoutError, ValueError, AttributeError, HcpError):
                token = None
        if not token or not isinstance(token, str):
            raise AuthenticationError(
                'send the bearer token as ?token= or a first message {"token": ...}'
            )
        principal = tokens.verify(token)
        if not allowed(principal.role, Action.VIEW_OWN_WORKLOADS):
            raise PermissionDeniedError(f"role {principal.role.value!r} may not watch workloads")
        await limits.check(principal)
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
        await hub.ensure_started()
        feed = LiveCursor(hub, None if after is None else int(after))
        await ws.send_json(
            {
                "type": "welcome",
                "subject": principal.subject,
                "role": principal.role.value,
                "cursor": feed.cursor,
            }
        )
        receiver = asyncio.create_task(_drain(ws))
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        expires = principal.expires_at
        try:
            while not receiver.done():
                wait = max(0.0, last_sent + heartbeat_s - loop.time())
                if expires is not None:
                    left = (expires - services.clock.now()).total_seconds()
                    if left <= 0:
                        # The token ends the connection as it ends HTTP access: no event
                        # reaches a client after its token has expired.
                        await ws.send_json({"error": "token_expired",
                                            "detail": "the token expired; reconnect with a new one"})
                        await ws.close(code=_CLOSE_CODES[401])
                        return
                    wait = min(wait, left)
                for e in await feed.next(wait):
                    if expires is not None and services.clock.now() >= expires:
                        break
                    if visible(principal, e):
                        await ws.send_json({"type": "event", "event": e})
                        last_sent = loop.time()
                if loop.time() - last_sent >= heartbeat_s:
                    last_sent = loop.time()
                    await ws.send_json(
                        {
                            "type": "heartbeat",
                            "at": services.clock.now().isoformat(),
                            "cursor": feed.cursor,
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
