"""The node's HTTP surfaces in process: Kubo RPC shapes, the trustless gateway, refusals."""

from __future__ import annotations

import io
import json
from pathlib import Path

from hcp.auth.tokens import Role
from hcp.images.car import CarReader
from hcp.images.cids import parse_cid
from hcp.images.importer import import_bytes
from hcp.images.params import KUBO_CIDV1
from hcp.images.patterns import pattern_bytes
from hcp.images.store.embedded import EmbeddedStore
from tests.unit.images.http_support import bearer, node


def test_kubo_add_cat_and_gateway(tmp_path: Path, store: EmbeddedStore) -> None:
    client, tokens = node(tmp_path, store)
    auth = bearer(tokens, Role.PROVIDER)
    data = pattern_bytes("http", 700_000)
    r = client.post("/api/v0/add", params={"cid-version": "1"}, headers=auth,
                    files={"file": ("", data, "application/octet-stream")})
    assert r.status_code == 200, r.text
    line = json.loads(r.text.splitlines()[-1])
    assert line["Hash"] == str(import_bytes(data, params=KUBO_CIDV1).cid)
    cid = line["Hash"]
    assert client.post("/api/v0/cat", params={"arg": cid, "offset": 5, "length": 10},
                       headers=auth).content == data[5:15]
    # gateway: public, raw block, CAR, ranges
    raw = client.get(f"/ipfs/{cid}", headers={"Accept": "application/vnd.ipld.raw"})
    assert raw.headers["content-type"] == "application/vnd.ipld.raw"
    assert parse_cid(cid).digest == __import__("hashlib").sha256(raw.content).digest()
    car = client.get(f"/ipfs/{cid}?format=car")
    reader = CarReader(io.BytesIO(car.content))
    assert [str(c) for c in reader.roots] == [cid] and len(list(reader)) == 4
    part = client.get(f"/ipfs/{cid}", headers={"Range": "bytes=300000-301023"})
    assert part.status_code == 206 and part.content == data[300000:301024]
    assert part.headers["content-range"] == f"bytes 300000-301023/{len(data)}"
    assert client.get(f"/ipfs/{cid}").content == data
    assert client.get(f"/ipfs/{cid}", headers={"Range": "bytes=900000-"}).status_code == 416


def test_kubo_pins_gc_stat_and_errors(tmp_path: Path, store: EmbeddedStore) -> None:
    client, tokens = node(tmp_path, store)
    auth = bearer(tokens, Role.ADMIN)
    put = client.post("/api/v0/block/put", headers=auth, params={"cid-codec": "raw"},
                      files={"data": ("", b"block bytes")})
    key = put.json()["Key"]
    assert key.startswith("bafkrei") and put.json()["Size"] == 11
    assert client.post("/api/v0/block/get", params={"arg": key}, headers=auth).content == b"block bytes"
    assert client.post("/api/v0/pin/add", params={"arg": key}, headers=auth).json() == {"Pins": [key]}
    ls = client.post("/api/v0/pin/ls", params={"stream": "true"}, headers=auth)
    assert [json.loads(x)["Cid"] for x in ls.text.splitlines()] == [key]
    assert client.post("/api/v0/repo/gc", headers=auth).text == ""
    client.post("/api/v0/pin/rm", params={"arg": key}, headers=auth)
    gone = [json.loads(x)["Key"]["/"] for x in client.post("/api/v0/repo/gc", headers=auth).text.splitlines()]
    assert gone == [key]
    stat = client.post("/api/v0/repo/stat", headers=auth).json()
    assert stat["NumObjects"] == 0 and stat["StorageMax"] == store.cap_bytes and stat["RepoPath"] == ""
    bad = client.post("/api/v0/cat", params={"arg": "not-a-cid"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_cid" and bad.json()["Type"] == "error"
    missing = client.post("/api/v0/block/get", params={"arg": key}, headers=auth)
    assert missing.status_code == 404 and missing.json()["error"] == "block_not_found"
    assert client.get("/ipfs/zzz").json()["error"] == "invalid_cid"
    # RBAC: the RPC needs a provider or admin token; customers and anonymous callers are refused
    assert client.post("/api/v0/repo/stat").status_code == 401
    assert client.post("/api/v0/repo/stat", headers=bearer(tokens, Role.CUSTOMER)).status_code == 403


def test_bodies_are_bounded_before_parsing(tmp_path: Path, store: EmbeddedStore) -> None:
    client, tokens = node(tmp_path, store, upload_max_bytes=1000)
    r = client.post("/api/v1/images/upload", headers=bearer(tokens, Role.CUSTOMER),
                    files={"image": ("x.tar", b"\0" * 5000)})
    assert r.status_code == 413 and r.json()["error"] == "upload_too_large"
    r = client.post("/api/v0/add", headers=bearer(tokens, Role.ADMIN),
                    files={"file": ("", b"\0" * 5000)})
    assert r.status_code == 413


def test_store_full_is_507(tmp_path: Path) -> None:
    from tests.unit.images.conftest import make_store

    small = make_store(tmp_path, cap=100_000)
    client, tokens = node(tmp_path, small)
    r = client.post("/api/v0/add", headers=bearer(tokens, Role.ADMIN),
                    files={"file": ("", pattern_bytes("big", 300_000))})
    assert r.status_code == 507 and r.json()["error"] == "storage_full"
