"""The importer against Kubo's own CIDs, and its layout against the spec's rules.

The CIDs below are what ``ipfs add`` answers (the empty file and "hello world\\n" appear in
Kubo's and js-ipfs's docs and tests); every other vector is compared with the JS reference
importer in tests/integration/images/test_reference_importer.py.
"""

from __future__ import annotations

import hashlib

import pytest

from hcp.images.cids import DAG_PB, RAW, make_cid
from hcp.images.dagpb import (
    NodeType,
    decode_node,
    decode_unixfs,
    encode_node,
    encode_unixfs,
    leaf_prefix,
)
from hcp.images.importer import FileImporter, import_bytes, import_stream
from hcp.images.params import KUBO_2025, KUBO_CIDV1, ImportParams
from hcp.images.patterns import pattern_bytes, pattern_stream

KUBO = {
    (b"", 0): "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
    (b"", 1): "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    (b"hello world\n", 0): "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",
}


@pytest.mark.parametrize(("data", "version"), list(KUBO))
def test_kubo_published_cids(data: bytes, version: int) -> None:
    params = ImportParams() if version == 0 else KUBO_CIDV1
    assert str(import_bytes(data, params=params).cid) == KUBO[(data, version)]


def test_raw_leaf_of_a_small_file_is_the_sha256_of_its_bytes() -> None:
    data = b"hello world\n"
    cid = import_bytes(data, params=KUBO_CIDV1).cid
    assert (cid.version, cid.codec, cid.digest) == (1, RAW, hashlib.sha256(data).digest())


def test_empty_file_has_no_data_field() -> None:
    blocks: dict = {}
    r = import_bytes(b"", lambda c, b: blocks.__setitem__(c, b))
    fs = decode_unixfs(decode_node(blocks[r.cid]).data)
    assert fs.type is NodeType.FILE and fs.data is None and fs.filesize == 0


def test_leaf_framing_equals_protobuf_encoding() -> None:
    for n in (1, 127, 128, 16383, 16384, 262144):
        chunk = pattern_bytes("leaf", n)
        prefix, suffix = leaf_prefix(n)
        assert prefix + chunk + suffix == encode_node([], encode_unixfs(NodeType.FILE, chunk, n))


def _collect(data: bytes, params: ImportParams):  # type: ignore[no-untyped-def]
    blocks: dict = {}
    r = import_bytes(data, lambda c, b: blocks.__setitem__(c, b), params)
    return r, blocks


@pytest.mark.parametrize("params", [ImportParams(), KUBO_CIDV1], ids=["v0", "v1"])
def test_links_come_before_data_with_empty_names_and_tsize(params: ImportParams) -> None:
    r, blocks = _collect(pattern_bytes("two", 262145), params)
    root = blocks[r.cid]
    assert root[0] == 0x12  # field 2 (Links) first: dag-pb's canonical order
    node = decode_node(root)
    assert [link.name for link in node.links] == ["", ""]
    assert [link.tsize for link in node.links] == [len(blocks[link.cid]) for link in node.links]
    assert r.tsize == len(root) + sum(link.tsize for link in node.links)
    fs = decode_unixfs(node.data)
    assert fs.blocksizes == (262144, 1) and fs.filesize == 262145 and fs.data is None


@pytest.mark.parametrize("params", [ImportParams(), KUBO_CIDV1], ids=["v0", "v1"])
def test_one_chunk_file_is_its_leaf(params: ImportParams) -> None:
    r, blocks = _collect(pattern_bytes("one", 262144), params)
    assert len(blocks) == 1 and r.cid.codec == (RAW if params.raw_leaves else DAG_PB)


def test_174_leaves_fit_one_node_and_175_need_another_level() -> None:
    p = ImportParams(chunk_size=4096, max_links=174)  # pattern blocks are 4 KiB, all distinct
    r174, b174 = _collect(pattern_bytes("l", 4096 * 174), p)
    assert len(decode_node(b174[r174.cid]).links) == 174 and len(b174) == 175
    r175, b175 = _collect(pattern_bytes("l", 4096 * 175), p)
    top = decode_node(b175[r175.cid])
    # balanced: a full node of 174 leaves, then a node holding the single 175th leaf
    assert len(top.links) == 2
    assert [len(decode_node(b175[link.cid]).links) for link in top.links] == [174, 1]


def test_writes_in_any_pieces_give_the_same_cid() -> None:
    data = pattern_bytes("pieces", 3 * 262144 + 77)
    whole = import_bytes(data).cid
    for step in (1000, 262144, 262145, 777_777):
        imp = FileImporter(None, ImportParams())
        for i in range(0, len(data), step):
            imp.write(data[i:i + step])
        assert imp.finish().cid == whole
    assert import_stream(pattern_stream("pieces", len(data), 4096), None).cid == whole


def test_params_change_the_cid_and_are_recorded() -> None:
    data = pattern_bytes("p", 2 << 20)
    a, b = import_bytes(data), import_bytes(data, params=KUBO_2025)
    assert a.cid != b.cid and b.params.to_dict() == {
        "chunk_size": 1 << 20, "max_links": 1024, "cid_version": 1, "raw_leaves": True}
    assert ImportParams.from_dict(b.params.to_dict()) == KUBO_2025


def test_blocks_hash_to_their_cids() -> None:
    _, blocks = _collect(pattern_bytes("h", 600_000), ImportParams(chunk_size=4096, max_links=4))
    for cid, block in blocks.items():
        assert make_cid(block, cid.codec, cid.version) == cid
