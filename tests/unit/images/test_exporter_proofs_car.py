"""Reading back: cat, ranges touching only their blocks, Merkle range proofs, CAR files."""

from __future__ import annotations

import io

import pytest

from hcp.errors import InvalidBlockError, InvalidCarError, TamperedBlockError, ValidationError
from hcp.images.car import CarReader, export_car
from hcp.images.cids import Cid
from hcp.images.directory import Entry, make_tree
from hcp.images.exporter import cat, file_size, list_directory, resolve_path, walk
from hcp.images.importer import import_bytes
from hcp.images.params import KUBO_CIDV1, ImportParams
from hcp.images.patterns import pattern_bytes
from hcp.images.proofs import Challenge, answer, check_answer, prove_range, verify_range

SMALL = ImportParams(chunk_size=1000, max_links=5)


def _dag(data: bytes, params: ImportParams = SMALL):  # type: ignore[no-untyped-def]
    blocks: dict[bytes, bytes] = {}
    r = import_bytes(data, lambda c, b: blocks.__setitem__(c.multihash, b), params)
    return r, blocks, (lambda c: blocks[c.multihash])


@pytest.mark.parametrize("params", [SMALL, ImportParams(chunk_size=1000, max_links=5, cid_version=1,
                                                        raw_leaves=True)], ids=["v0", "v1"])
def test_cat_and_ranges(params: ImportParams) -> None:
    data = pattern_bytes("cat", 123_457)
    r, _, get = _dag(data, params)
    assert b"".join(cat(r.cid, get)) == data and file_size(r.cid, get) == len(data)
    for off, n in [(0, 0), (0, 1), (999, 2), (5000, 1024), (123_456, 10), (200_000, 5)]:
        assert b"".join(cat(r.cid, get, off, n)) == data[off:off + n]


def test_range_touches_only_its_path() -> None:
    data = pattern_bytes("touch", 1_000_000)  # 1000 leaves, depth 5 at 5 links per node
    r, blocks, get = _dag(data)
    seen: list[Cid] = []
    assert b"".join(cat(r.cid, get, 500_100, 100, visit=lambda c, _b: seen.append(c))) == \
        data[500_100:500_200]
    depth = 0
    cid = r.cid
    while cid.codec == 0x70 and list_directory.__name__:  # walk the leftmost path for depth
        from hcp.images.dagpb import decode_node

        links = decode_node(blocks[cid.multihash]).links
        if not links:
            break
        cid, depth = links[0].cid, depth + 1
    assert len(seen) == depth + 1  # one node per level and the one leaf


def test_range_proof_verifies_against_the_root_alone() -> None:
    data = pattern_bytes("proof", 300_000)
    r, _, get = _dag(data)
    proof = prove_range(r.cid, 123_000, 1024, get)
    assert verify_range(r.cid, 123_000, 1024, proof.blocks) == data[123_000:124_024]
    tampered = list(proof.blocks)
    tampered[-1] = tampered[-1][:-1] + bytes([tampered[-1][-1] ^ 1])
    with pytest.raises((TamperedBlockError, ValidationError)):
        verify_range(r.cid, 123_000, 1024, tampered)
    with pytest.raises(ValidationError, match="lacks block"):
        verify_range(r.cid, 123_000, 1024, proof.blocks[:-1])
    other = import_bytes(b"other").cid
    with pytest.raises(ValidationError):
        verify_range(other, 123_000, 1024, proof.blocks)


def test_possession_challenge_binds_the_nonce() -> None:
    data = pattern_bytes("chal", 50_000)
    r, _, get = _dag(data)
    ch = Challenge(r.cid, 40_000, 1024, b"nonce-1")
    proof, digest = answer(ch, get)
    assert check_answer(ch, proof, digest)
    assert not check_answer(Challenge(r.cid, 40_000, 1024, b"nonce-2"), proof, digest)
    assert not check_answer(Challenge(r.cid, 0, 1024, b"nonce-1"), proof, digest)


def test_tampered_block_is_refused_naming_its_cid() -> None:
    data = pattern_bytes("tamper", 5_000)
    r, blocks, get = _dag(data)
    victim = next(c for c, _ in walk(r.cid, get) if c != r.cid)
    blocks[victim.multihash] = blocks[victim.multihash][:-1] + b"\0"
    with pytest.raises(TamperedBlockError) as err:
        b"".join(cat(r.cid, get))
    assert str(victim) in str(err.value)


def test_lying_blocksizes_are_caught() -> None:
    from hcp.images.cids import DAG_PB, make_cid
    from hcp.images.dagpb import Link, NodeType, encode_node, encode_unixfs

    leaf = import_bytes(b"abc", params=KUBO_CIDV1)
    node = encode_node([Link(leaf.cid, "", 3)], encode_unixfs(NodeType.FILE, None, 10, [10]))
    root = make_cid(node, DAG_PB, 1)
    blocks = {root.multihash: node, leaf.cid.multihash: b"abc"}
    with pytest.raises(InvalidBlockError):
        b"".join(cat(root, lambda c: blocks[c.multihash]))


def test_directories_resolve_and_list() -> None:
    blocks: dict[bytes, bytes] = {}
    sink = lambda c, b: blocks.__setitem__(c.multihash, b)
    a = import_bytes(b"A" * 10, sink)
    b = import_bytes(b"B" * 3000, sink)
    top = make_tree({"z/b": Entry(b.cid, b.tsize), "a": Entry(a.cid, a.tsize)}, sink)
    get = lambda c: blocks[c.multihash]
    assert [link.name for link in list_directory(top.cid, get)] == ["a", "z"]
    assert b"".join(cat(resolve_path(top.cid, "z/b", get), get)) == b"B" * 3000
    with pytest.raises(ValidationError):
        make_tree({"a/": Entry(a.cid, 1), "a/../x": Entry(a.cid, 1)}, None)


def test_car_round_trip_and_refusals() -> None:
    data = pattern_bytes("car", 20_000)
    r, blocks, get = _dag(data)
    car = b"".join(export_car(r.cid, get))
    reader = CarReader(io.BytesIO(car))
    assert reader.roots == [r.cid]
    got = {c.multihash: b for c, b in reader}
    assert got == blocks
    bad = bytearray(car)
    bad[-1] ^= 1
    with pytest.raises(InvalidCarError, match="does not match its CID"):
        list(CarReader(io.BytesIO(bytes(bad))))
    with pytest.raises(InvalidCarError):
        list(CarReader(io.BytesIO(car[:-3])))
    with pytest.raises(InvalidCarError):
        CarReader(io.BytesIO(b"\x05hello"))
