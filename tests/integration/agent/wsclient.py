"""A small WebSocket reader for the instance streams (the websockets package's sync client)."""

from __future__ import annotations

import json
from typing import Any

from websockets.sync.client import connect


def ws_url(base: str, path: str, token: str, cursor: int | None = None) -> str:
    url = base.replace("http://", "ws://") + f"{path}?token={token}"
    return url if cursor is None else url + f"&cursor={cursor}"


def read_until_end(url: str, stop_after: int | None = None, timeout: float = 60.0,
                   on_message: Any = None) -> list[dict[str, Any]]:
    """Every message of one connection up to ``end`` (or after ``stop_after`` items: then the
    client hangs up as a flaky network would)."""
    out: list[dict[str, Any]] = []
    items = 0
    with connect(url, open_timeout=10, max_size=8 << 20) as ws:
        while True:
            msg = json.loads(ws.recv(timeout=timeout))
            out.append(msg)
            if on_message is not None:
                on_message(msg)
            items += len(msg.get("items", []))
            if msg.get("type") == "end" or "error" in msg:
                return out
            if stop_after is not None and items >= stop_after:
                return out


def items(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for m in messages if m.get("type") in ("lines", "samples") for i in m["items"]]
