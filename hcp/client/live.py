"""``WS /api/v1/live`` as an iterator of events that survives reconnects.

The server's ``cursor`` (in ``welcome`` and ``heartbeat``) is an event id up to which this
connection has been sent everything; reconnecting with ``?after=<cursor>`` resends nothing
below it, but may resend events above it (the server's own contract: clients dedupe by id).
``LiveState`` keeps the cursor and the ids delivered above it, so across any number of
reconnects each event is yielded exactly once and none is skipped. Keep ``feed.cursor`` to
resume in a later process: ``client.live(after=cursor)``.

The bearer token is sent as the first message, never in the URL (URLs end up in logs).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection as SyncConnection
from websockets.sync.client import connect as sconnect

from hcp.client.errors import error_from_message
from hcp.client.models import Event
from hcp.client.transport import RetryPolicy
from hcp.errors import ApiUnreachableError, HcpError, RateLimitedError, UnexpectedResponseError

log = logging.getLogger(__name__)

PATH = "/api/v1/live"
LIVE_RETRY = RetryPolicy(max_attempts=10, backoff_s=0.2, max_backoff_s=5.0)
_DROPS = (ConnectionClosed, OSError, TimeoutError, InvalidHandshake)


def live_url(base_url: str, after: int | None) -> str:
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = "" if after is None else f"after={int(after)}"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + PATH, query, ""))


class LiveState:
    """The cursor and the ids delivered above it: what makes a resume exact."""

    def __init__(self, after: int | None) -> None:
        self.cursor = after
        self._seen: set[int] = set()
        self.repeats = 0  # events the server resent after a reconnect, dropped here

    def take(self, message: Any) -> Event | None:
        """The event to yield for one message, None for bookkeeping; raises the server's refusal."""
        if not isinstance(message, dict):
            raise UnexpectedResponseError(f"live feed: unexpected message {str(message)[:200]}")
        kind = message.get("type")
        if kind in ("welcome", "heartbeat"):
            self._advance(int(message["cursor"]))
            return None
        if kind == "event":
            event = Event.model_validate(message["event"])
            if (self.cursor is not None and event.id <= self.cursor) or event.id in self._seen:
                self.repeats += 1  # resent after a reconnect: already yielded
                return None
            self._seen.add(event.id)
            return event
        if "error" in message:
            raise error_from_message(message)
        return None  # a message type this client does not know yet

    def _advance(self, cursor: int) -> None:
        if self.cursor is None or cursor > self.cursor:
            self.cursor = cursor
            self._seen = {i for i in self._seen if i > cursor}


class _Reconnects:
    """Consecutive failures since the last welcome, and how long to wait after each."""

    def __init__(self, policy: RetryPolicy, enabled: bool, seed: int | None) -> None:
        self.policy, self.enabled, self.failures = policy, enabled, 0
        self._rng = random.Random(seed)

    def delay(self, error: HcpError | BaseException, base_url: str) -> float:
        """Seconds before reconnecting; raises when the feed should end with ``error``."""
        self.failures += 1
        if isinstance(error, HcpError) and not isinstance(error, RateLimitedError):
            raise error  # refused (token, role, cursor): reconnecting cannot help
        if not self.enabled or self.failures >= self.policy.max_attempts:
            if isinstance(error, HcpError):
                raise error
            raise ApiUnreachableError(f"live feed at {base_url} lost after {self.failures} "
                                      f"attempt(s): {type(error).__name__}: {error}") from error
        if isinstance(error, RateLimitedError):
            return float(getattr(error, "retry_after", 1) or 1)
        return self.policy.backoff(self.failures, self._rng)


class AsyncLiveFeed:
    """``async for event in client.live(): ...``; ``cursor`` says where it stands."""

    def __init__(self, base_url: str, token: str | None, after: int | None = None, *,
                 reconnect: bool = True, retry: RetryPolicy = LIVE_RETRY,
                 open_timeout: float = 10.0, idle_timeout: float | None = 60.0,
                 sleep: Callable[[float], Any] = asyncio.sleep, seed: int | None = None) -> None:
        self._base, self._token, self._open_timeout = base_url, token, open_timeout
        self._idle = idle_timeout
        self._state = LiveState(after)
        self._retries = _Reconnects(retry, reconnect, seed)
        self._sleep = sleep
        self._ws: ClientConnection | None = None
        self._opened = False
        self.reconnects = 0  # connections opened after the first

    @property
    def cursor(self) -> int | None:
        return self._state.cursor

    @property
    def repeats(self) -> int:
        """Events the server resent after a reconnect (dropped, never yielded twice)."""
        return self._state.repeats

    def __aiter__(self) -> AsyncLiveFeed:
        return self

    async def __anext__(self) -> Event:
        while True:
            try:
                if self._ws is None:
                    await self._open()
                assert self._ws is not None
                # Heartbeats come every few seconds: a silent connection is a dead one.
                message = json.loads(await asyncio.wait_for(self._ws.recv(), self._idle))
                if isinstance(message, dict) and message.get("type") == "welcome":
                    self._retries.failures = 0
                event = self._state.take(message)
            except (*_DROPS, RateLimitedError, ValueError) as exc:
                error = exc if not isinstance(exc, ValueError) else UnexpectedResponseError(str(exc))
                await self._drop()
                wait = self._retries.delay(error, self._base)
                log.info("live feed dropped (%s); reconnecting in %.2fs from cursor %s",
                         type(exc).__name__, wait, self.cursor)
                await self._sleep(wait)
                continue
            except HcpError:
                await self._drop()
                raise
            if event is not None:
                return event

    async def _open(self) -> None:
        if self._opened:
            self.reconnects += 1
        self._ws = await aconnect(live_url(self._base, self._state.cursor),
                                  open_timeout=self._open_timeout, max_size=2**24)
        self._opened = True
        await self._ws.send(json.dumps({"token": self._token or ""}))

    async def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                await ws.close()
            except _DROPS:
                pass

    async def aclose(self) -> None:
        await self._drop()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class LiveFeed:
    """The same feed for synchronous code: ``for event in client.live(): ...``."""

    def __init__(self, base_url: str, token: str | None, after: int | None = None, *,
                 reconnect: bool = True, retry: RetryPolicy = LIVE_RETRY,
                 open_timeout: float = 10.0, idle_timeout: float | None = 60.0,
                 sleep: Callable[[float], None] = time.sleep, seed: int | None = None) -> None:
        self._base, self._token, self._open_timeout = base_url, token, open_timeout
        self._idle = idle_timeout
        self._state = LiveState(after)
        self._retries = _Reconnects(retry, reconnect, seed)
        self._sleep = sleep
        self._ws: SyncConnection | None = None
        self._opened = False
        self.reconnects = 0

    @property
    def cursor(self) -> int | None:
        return self._state.cursor

    @property
    def repeats(self) -> int:
        """Events the server resent after a reconnect (dropped, never yielded twice)."""
        return self._state.repeats

    def __iter__(self) -> LiveFeed:
        return self

    def __next__(self) -> Event:
        while True:
            try:
                if self._ws is None:
                    self._open()
                assert self._ws is not None
                message = json.loads(self._ws.recv(timeout=self._idle))
                if isinstance(message, dict) and message.get("type") == "welcome":
                    self._retries.failures = 0
                event = self._state.take(message)
            except (*_DROPS, RateLimitedError, ValueError) as exc:
                error = exc if not isinstance(exc, ValueError) else UnexpectedResponseError(str(exc))
                self._drop()
                wait = self._retries.delay(error, self._base)
                log.info("live feed dropped (%s); reconnecting in %.2fs from cursor %s",
                         type(exc).__name__, wait, self.cursor)
                self._sleep(wait)
                continue
            except HcpError:
                self._drop()
                raise
            if event is not None:
                return event

    def _open(self) -> None:
        if self._opened:
            self.reconnects += 1
        conn = sconnect(live_url(self._base, self._state.cursor), open_timeout=self._open_timeout,
                        max_size=2**24)
        self._ws = conn.__enter__()  # owned by this feed: _drop closes it
        self._opened = True
        self._ws.send(json.dumps({"token": self._token or ""}))

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close()
            except _DROPS:
                pass

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
