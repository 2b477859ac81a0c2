"""The Kubo backend (httpx over Kubo's RPC) against a node speaking that RPC: hcp's own, under
uvicorn, since no Kubo daemon can be installed here. It gives the embedded store's CIDs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hcp.auth.tokens import Role
from hcp.errors import BlockNotFoundError, StorageFullError
from hcp.images.params import KUBO_CIDV1, ImportParams
from hcp.images.patterns import pattern_bytes
from hcp.images.store.embedded import EmbeddedStore
from hcp.images.store.kubo import KuboStore
from tests.integration.images.node_server import serve
from tests.unit.images.conftest import make_store
from tests.unit.images.http_support import node


def test_kubo_backend_round_trip(tmp_path: Path, store: EmbeddedStore) -> None:
    client, tokens = node(tmp_path, store)
    reference = make_store(tmp_path / "ref", cap=64 << 20)
    data = pattern_bytes("kubo", 900_000)
    with serve(client.app) as url:
        kubo = KuboStore(url, cap_bytes=64 << 20,
                         headers={"Authorization": f"Bearer {tokens.issue('op', Role.ADMIN)}"})
        for params in (ImportParams(), KUBO_CIDV1, ImportParams(chunk_size=100_000, max_links=3)):
            added = kubo.add([data], params)
            assert added.cid == reference.add([data], params).cid and added.size == len(data)
            assert b"".join(kubo.cat(added.cid, 100_000, 50)) == data[100_000:100_050]
        tree = kubo.add_tree({"a/x": [b"xx"], "b": [data]}, KUBO_CIDV1)
        assert tree.cid == reference.add_tree({"a/x": [b"xx"], "b": [data]}, KUBO_CIDV1).cid
        raw = kubo.put_block(b"raw!")
        assert kubo.get_block(raw) == b"raw!" and kubo.has_block(raw)
        kubo.lease("job-1", raw)
        assert kubo.is_pinned(raw)
        kubo.gc()
        assert kubo.has_block(raw)
        assert kubo.release("job-1") == 1 and not kubo.is_pinned(raw)
        assert raw in kubo.gc().removed
        with pytest.raises(BlockNotFoundError):
            kubo.get_block(raw)
        assert kubo.stat().blocks == store.stat().blocks
        small = KuboStore(url, cap_bytes=1000,
                          headers={"Authorization": f"Bearer {tokens.issue('op', Role.ADMIN)}"})
        with pytest.raises(StorageFullError):
            small.add([b"more"])
        kubo.close()
        small.close()
