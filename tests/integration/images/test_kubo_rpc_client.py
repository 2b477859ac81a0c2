"""The official Kubo RPC client (npm kubo-rpc-client) against hcp's node under uvicorn."""

from __future__ import annotations

from pathlib import Path

from hcp.auth.tokens import Role
from hcp.images.importer import import_bytes
from hcp.images.params import KUBO_CIDV1
from hcp.images.store.embedded import EmbeddedStore
from tests.integration.images.js import run_script
from tests.integration.images.node_server import serve
from tests.unit.images.http_support import node

BIG = bytes((i * 7) & 0xFF for i in range(700_000))


def test_kubo_rpc_client_against_hcp_node(tmp_path: Path, store: EmbeddedStore) -> None:
    client, tokens = node(tmp_path, store)
    with serve(client.app) as url:
        out = run_script("kubo_client.mjs", {"url": url, "token": tokens.issue("prov", Role.PROVIDER)},
                         timeout=120)
    assert out["add_v0"]["cid"] == str(import_bytes(BIG).cid)
    assert out["add_v1"]["cid"] == str(import_bytes(BIG, params=KUBO_CIDV1).cid)
    assert out["add_v0"]["size"] == import_bytes(BIG).tsize
    assert out["cat_v1_equal"] is True and out["cat_range"] == list(BIG[1000:1005])
    paths = {e["path"]: e["cid"] for e in out["add_all"]}
    assert paths["img/blobs/layer"] == out["add_v0"]["cid"]  # one file, one CID, anywhere
    assert {"img", "img/blobs", "img/manifest.json"} <= set(paths)
    assert out["block_get"] == "raw block" and out["block_put"].startswith("bafkrei")
    assert out["block_put"] in out["pins_after_add"] and paths["img"] in out["pins_after_add"]
    assert out["block_put"] in out["gc"]
    assert "not in this store" in out["block_after_gc"]
    assert out["stat"]["storageMax"] == store.cap_bytes
    assert out["stat"]["numObjects"] == store.stat().blocks > 0
