from __future__ import annotations

import pytest
from multiformats import CID

from hcp.errors import InvalidCidError, TamperedBlockError
from hcp.images.cids import RAW, make_cid, normalize, parse_cid, verify_block
from hcp.marketplace.cid import validate_cid

V1 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


@pytest.mark.parametrize("base", ["base32", "base32upper", "base58btc", "base64", "base16", "base36"])
def test_one_cid_one_string(base: str) -> None:
    spelling = CID.decode(V1).encode(base)
    assert normalize(spelling) == V1 and validate_cid(f" {spelling} ") == V1


def test_cidv0_stays_base58() -> None:
    v0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    assert validate_cid(v0) == v0
    assert str(parse_cid(v0).to_v1()).startswith("bafybei")


@pytest.mark.parametrize("bad", ["", "Qm123", "bafy!!", "x" * 200, "b" + "a" * 58])
def test_bad_cids_are_typed_422(bad: str) -> None:
    with pytest.raises(InvalidCidError) as err:
        validate_cid(bad)
    assert err.value.http_status == 422 and err.value.code == "invalid_cid"


def test_binary_round_trip() -> None:
    c = make_cid(b"abc", RAW, 1)
    assert parse_cid(c.binary) == c and parse_cid(str(c)) == c


def test_tampered_block_names_its_cid() -> None:
    c = make_cid(b"abc", RAW, 1)
    verify_block(c, b"abc")
    with pytest.raises(TamperedBlockError) as err:
        verify_block(c, b"abd")
    assert str(c) in err.value.detail and err.value.context["cid"] == str(c)
