"""The Kubo backend: the same interface over a Kubo (or IPFS Cluster proxy) node's HTTP RPC,
for operators who run one. ``ipfshttpclient`` refuses every Kubo newer than 0.8, so this
speaks the RPC with httpx: ``add``, ``cat``, ``block/get|put|stat``, ``pin/add|rm|ls``,
``repo/gc``, ``repo/stat``.

Every block read back is still verified here against its CID. Kubo has one pin set, so a job's
lease is a pin this backend takes and bookkeeps in memory: released when the last lease on a
CID ends, unless the CID was pinned before. A restart forgets leases but keeps their pins, so a
leased image is never lost (at worst it stays pinned until unpinned by hand). The cap is
checked against ``repo/stat`` before each write; Kubo's own ``StorageMax`` is the backstop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from hcp.errors import (
    BlockNotFoundError,
    ImageBackendError,
    StorageFullError,
    ValidationError,
)
from hcp.images.cids import DAG_PB, RAW, Cid, parse_cid, verify_block
from hcp.images.exporter import cat as dag_cat
from hcp.images.params import MAX_LINKS, ImportParams
from hcp.images.store.base import AddResult, GcReport, PinInfo, RepoStat, Source
from hcp.resilience.breaker import DependencyBreaker
from hcp.resilience.registry import Dependency, guard_of

if TYPE_CHECKING:
    from hcp.config import Settings

log = logging.getLogger(__name__)
_CODEC_NAMES = {RAW: "raw", DAG_PB: "dag-pb"}


class _Reader:
    """A file object over an iterable of byte strings (httpx streams it as a multipart part)."""

    def __init__(self, source: Source) -> None:
        self._it = iter(source) if not hasattr(source, "read") else None
        self._src = source
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        if self._it is None:
            return self._src.read(n)  # type: ignore[union-attr]
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._it)
            except StopIteration:
                break
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


class KuboStore:
    def __init__(self, base_url: str, cap_bytes: int, client: httpx.Client | None = None,
                 timeout: float = 120.0, headers: dict[str, str] | None = None) -> None:
        self.base = base_url.rstrip("/") + "/api/v0"
        self.cap_bytes = cap_bytes
        self._http = client or httpx.Client(timeout=timeout, headers=headers or {})
        self._leases: dict[str, set[Cid]] = {}
        self._lease_pinned: set[Cid] = set()  # pins a lease took (not the user's)
        self._lock = threading.Lock()
        self.breaker: DependencyBreaker | None = None  # None: the process's image-store breaker

    @classmethod
    def from_settings(cls, settings: Settings, engine: Any = None) -> KuboStore:
        s = settings.images
        return cls(s.kubo_url, s.cap_bytes, timeout=s.kubo_timeout_seconds)

    # -- RPC -----------------------------------------------------------------------------------

    def _post(self, verb: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None,
              files: Any = None, stream: bool = False) -> httpx.Response:
        # A Kubo node that is down opens the image-store breaker: later calls fail fast (503
        # with retry_after) instead of each waiting out the HTTP timeout. Transfers (an upload,
        # a streamed read) are not timed by it: their length is the image's, not the node's.
        bulk = stream or files is not None
        with contextlib.nullcontext() if bulk else guard_of(Dependency.IMAGE_STORE, self.breaker):
            try:
                if stream:
                    req = self._http.build_request("POST", f"{self.base}/{verb}", params=params,
                                                   files=files)
                    r = self._http.send(req, stream=True)
                else:
                    r = self._http.post(f"{self.base}/{verb}", params=params, files=files)
            except httpx.HTTPError as exc:
                raise ImageBackendError(f"Kubo RPC {verb} failed: {type(exc).__name__}") from exc
        if r.status_code >= 400:
            if stream:
                r.read()
            self._raise(verb, r)
        return r

    def _raise(self, verb: str, r: httpx.Response) -> None:
        try:
            body = r.json()
        except ValueError:
            body = {}
        message = str(body.get("Message", r.text[:200]))
        code = body.get("error")
        if code == "storage_full" or r.status_code == 507:
            raise StorageFullError(f"the Kubo node is full: {message}", cap_bytes=self.cap_bytes)
        if r.status_code == 404 or "not found" in message or "not in this store" in message:
            raise BlockNotFoundError(f"Kubo has no such block ({message})")
        if r.status_code == 422 or "invalid" in message.lower() or "not pinned" in message:
            raise ValidationError(f"Kubo refused {verb}: {message}")
        raise ImageBackendError(f"Kubo RPC {verb} answered {r.status_code}: {message}")

    def _check_cap(self, incoming: int = 0) -> None:
        used = self.stat().used_bytes
        if used + incoming > self.cap_bytes:
            raise StorageFullError(f"the Kubo repository holds {used} of {self.cap_bytes} bytes",
                                   cap_bytes=self.cap_bytes, needed_bytes=incoming)

    # -- blocks --------------------------------------------------------------------------------

    def put_block(self, data: bytes, codec: int = RAW, cid_version: int = 1) -> Cid:
        if codec not in _CODEC_NAMES:
            raise ValidationError("only raw and dag-pb blocks are stored")
        self._check_cap(len(data))
        params = {"cid-codec": _CODEC_NAMES[codec], "mhtype": "sha2-256"}
        if codec == DAG_PB and cid_version == 0:
            params = {"format": "v0", "mhtype": "sha2-256"}
        r = self._post("block/put", params, files={"data": ("", data)})
        return parse_cid(r.json()["Key"])

    def put_blocks(self, blocks: Iterable[tuple[Cid, bytes]], root: Cid | None = None,
                   pin: bool = False, pinned_by: str | None = None, job_id: str | None = None) -> int:
        n = 0
        for cid, block in blocks:
            verify_block(cid, block)
            got = self.put_block(block, cid.codec, cid.version)
            if got.multihash != cid.multihash:
                raise ImageBackendError(f"Kubo stored {cid} under {got}")
            n += 1
        if root is not None and pin:
            self.pin(root, pinned_by)
        if root is not None and job_id is not None:
            self.lease(job_id, root)
        return n

    def get_block(self, cid: Cid) -> bytes:
        data = self._post("block/get", {"arg": str(cid), "offline": "true"}).content
        verify_block(cid, data)
        return data

    def has_block(self, cid: Cid) -> bool:
        try:
            self._post("block/stat", {"arg": str(cid), "offline": "true"})
        except (BlockNotFoundError, ValidationError, ImageBackendError):
            return False
        return True

    # -- files ---------------------------------------------------------------------------------

    def _add_params(self, params: ImportParams, pin: bool, **extra: str) -> dict[str, str]:
        out = {"cid-version": str(params.cid_version), "raw-leaves": str(params.raw_leaves).lower(),
               "chunker": params.chunker, "pin": str(pin).lower(), **extra}
        if params.max_links != MAX_LINKS:
            out["max-file-links"] = str(params.max_links)
        return out

    @staticmethod
    def _last_line(r: httpx.Response) -> dict[str, Any]:
        lines = [json.loads(x) for x in r.text.splitlines() if x.strip()]
        lines = [x for x in lines if "Hash" in x]
        if not lines:
            raise ImageBackendError("Kubo add answered no CID")
        return lines[-1]

    def add(self, source: Source, params: ImportParams | None = None, pin: bool = True,
            pinned_by: str | None = None) -> AddResult:
        params = params or ImportParams()
        self._check_cap()
        r = self._post("add", self._add_params(params, pin),
                       files={"file": ("", _Reader(source), "application/octet-stream")})
        last = self._last_line(r)
        cid = parse_cid(last["Hash"])
        size = self._file_size(cid)
        return AddResult(cid, size, int(last.get("Size", 0)), 0, params, pin)

    def _file_size(self, cid: Cid) -> int:
        from hcp.images.exporter import file_size

        return file_size(cid, self.get_block)

    def add_tree(self, files: Mapping[str, Source], params: ImportParams | None = None,
                 pin: bool = True, pinned_by: str | None = None) -> AddResult:
        params = params or ImportParams()
        self._check_cap()
        parts = [("file", (path.strip("/"), _Reader(src), "application/octet-stream"))
                 for path, src in files.items()]
        r = self._post("add", self._add_params(params, pin, **{"wrap-with-directory": "true"}),
                       files=parts)
        last = self._last_line(r)
        return AddResult(parse_cid(last["Hash"]), 0, int(last.get("Size", 0)), 0, params, pin)

    def cat(self, cid: Cid, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        # Kubo's own cat would be trusted; walking the DAG block by block verifies each one.
        return dag_cat(cid, self.get_block, offset, length)

    # -- holds ---------------------------------------------------------------------------------

    def pin(self, cid: Cid, pinned_by: str | None = None) -> None:
        self._post("pin/add", {"arg": str(cid), "recursive": "true"})
        with self._lock:
            self._lease_pinned.discard(cid)  # now the user's pin, whatever leases do

    def unpin(self, cid: Cid) -> bool:
        if not self.is_pinned(cid):
            return False
        with self._lock:
            if any(cid in cids for cids in self._leases.values()):
                self._lease_pinned.add(cid)  # the leases keep it; their end unpins it
                return True
        self._post("pin/rm", {"arg": str(cid)})
        return True

    def pins(self) -> list[PinInfo]:
        r = self._post("pin/ls", {"type": "recursive", "stream": "true"})
        out = []
        for line in r.text.splitlines():
            if line.strip():
                out.append(PinInfo(parse_cid(json.loads(line)["Cid"]), None, None))
        return out

    def is_pinned(self, cid: Cid) -> bool:
        try:
            r = self._post("pin/ls", {"arg": str(cid), "type": "recursive"})
        except (ValidationError, BlockNotFoundError, ImageBackendError):
            return False
        return bool(r.json().get("Keys"))

    def lease(self, job_id: str, cid: Cid) -> None:
        was_pinned = self.is_pinned(cid)
        if not was_pinned:
            self._post("pin/add", {"arg": str(cid), "recursive": "true"})
        with self._lock:
            self._leases.setdefault(job_id, set()).add(cid)
            if not was_pinned:
                self._lease_pinned.add(cid)

    def release(self, job_id: str) -> int:
        with self._lock:
            cids = self._leases.pop(job_id, set())
            still = set().union(*self._leases.values()) if self._leases else set()
            drop = [c for c in cids if c in self._lease_pinned and c not in still]
            for c in drop:
                self._lease_pinned.discard(c)
        for c in drop:
            self._post("pin/rm", {"arg": str(c)})
        return len(cids)

    # -- space ---------------------------------------------------------------------------------

    def gc(self) -> GcReport:
        r = self._post("repo/gc")
        removed = []
        for line in r.text.splitlines():
            if line.strip():
                key = json.loads(line).get("Key", {})
                if isinstance(key, dict) and "/" in key:
                    removed.append(parse_cid(key["/"]))
        return GcReport(len(removed), 0, tuple(removed))

    def stat(self) -> RepoStat:
        s = self._post("repo/stat").json()
        with self._lock:
            leases = sum(len(v) for v in self._leases.values())
        return RepoStat(int(s["RepoSize"]), self.cap_bytes, int(s["NumObjects"]), len(self.pins()), leases)

    def close(self) -> None:
        self._http.close()
