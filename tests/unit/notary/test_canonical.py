"""hcp.notary.canonical against RFC 8785's published test vectors, and the two forms' relation.

Vectors: RFC 8785 Appendix B (number serialisation, IEEE-754 bit patterns) and the examples of
Sections 3.2.2 (values) and 3.2.3 (property sorting by UTF-16 code units).
"""

from __future__ import annotations

import json
import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcp.notary.canonical import CanonicalizationError, jcs_bytes, legacy_bytes, signed_forms

APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("7fffffffffffffff", None),  # NaN
    ("7ff0000000000000", None),  # Infinity
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("ieee", "expected"), APPENDIX_B)
def test_rfc8785_appendix_b_numbers(ieee: str, expected: str | None) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(ieee))
    if expected is None:
        with pytest.raises(CanonicalizationError):
            jcs_bytes(value)
    else:
        assert jcs_bytes(value) == expected.encode()
        assert jcs_bytes([value]) == f"[{expected}]".encode()


def test_rfc8785_section_3_2_2_values() -> None:
    text = ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
            ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
            ' "literals": [null, true, false]}')
    expected = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
                '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
    assert jcs_bytes(json.loads(text)) == expected.encode("utf-8")


def test_rfc8785_section_3_2_3_sorting() -> None:
    obj = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
           "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control",
           "\u00f6": "Latin Small Letter O With Diaeresis"}
    order = [v for _, v in json.loads(jcs_bytes(obj)).items()]
    assert order == ["Carriage Return", "One", "Control", "Latin Small Letter O With Diaeresis",
                     "Euro Sign", "Emoji: Grinning Face", "Hebrew Letter Dalet With Dagesh"]
    # Python's code-point order puts U+FB33 before U+1F600: the legacy form differs here.
    assert list(json.loads(legacy_bytes(obj)).values())[-1] == "Emoji: Grinning Face"


def test_the_two_forms_and_what_a_verifier_tries() -> None:
    assert legacy_bytes({"s": 1e-7, "b": 1.0}) == b'{"b":1.0,"s":1e-07}'
    assert jcs_bytes({"s": 1e-7, "b": 1.0}) == b'{"b":1,"s":1e-7}'
    assert signed_forms({"s": 1e-7}) == (b'{"s":1e-7}', b'{"s":1e-07}')
    assert signed_forms({"score": 0.9731, "id": "é"}) == ('{"id":"é","score":0.9731}'.encode(),)
    # An integer past 2**53 is read as the double a JSON parser makes of it, then written as
    # ECMAScript does (shortest digits that round-trip, then zeros).
    assert signed_forms({"n": 2**60}) == (b'{"n":1152921504606847000}', b'{"n":1152921504606846976}')
    assert jcs_bytes({"n": 2**53 + 1}) == b'{"n":9007199254740992}'  # rounded as JSON.parse does
    assert signed_forms({"n": 10**400}) == (b'{"n":1' + b"0" * 400 + b"}",)  # no double: legacy only
    with pytest.raises(ValueError):
        legacy_bytes({"x": math.nan})


@given(st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
                    max_leaves=12))
def test_jcs_round_trips_and_is_a_fixed_point(obj: object) -> None:
    """What a JCS signer sends, the notary parses and canonicalises to the same bytes."""
    once = jcs_bytes(obj)
    assert jcs_bytes(json.loads(once)) == once
