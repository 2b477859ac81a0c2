"""Network faults in front of the real app: an answer lost after the server acted, or a
connection that never opened. Only the wire misbehaves; the app behind it is the real one."""

from __future__ import annotations

import httpx


class FlakyTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; the first ``times`` requests matching (method, path) fail.

    ``lose_answer``: the request reaches the app (which acts on it), then the answer is lost
    (a reset mid-response). Otherwise the connection is refused before anything is sent.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, method: str, path: str, times: int = 1,
                 lose_answer: bool = True) -> None:
        self.inner, self.method, self.path = inner, method, path
        self.left, self.lose_answer = times, lose_answer
        self.reached = 0  # matching requests the app received

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        hit = request.method == self.method and request.url.path == self.path
        if hit and self.left > 0:
            self.left -= 1
            if not self.lose_answer:
                raise httpx.ConnectError("connection refused", request=request)
            response = await self.inner.handle_async_request(request)
            await response.aread()
            self.reached += 1
            raise httpx.ReadError("connection reset by peer", request=request)
        if hit:
            self.reached += 1
        return await self.inner.handle_async_request(request)


class FlakySyncTransport(httpx.BaseTransport):
    """The same faults for the synchronous client (over a real socket transport)."""

    def __init__(self, inner: httpx.BaseTransport, method: str, path: str, times: int = 1,
                 lose_answer: bool = True) -> None:
        self.inner, self.method, self.path = inner, method, path
        self.left, self.lose_answer = times, lose_answer
        self.reached = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        hit = request.method == self.method and request.url.path == self.path
        if hit and self.left > 0:
            self.left -= 1
            if not self.lose_answer:
                raise httpx.ConnectError("connection refused", request=request)
            response = self.inner.handle_request(request)
            response.read()
            self.reached += 1
            raise httpx.ReadError("connection reset by peer", request=request)
        if hit:
            self.reached += 1
        return self.inner.handle_request(request)
