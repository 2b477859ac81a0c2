"""The oracle's signed bytes are RFC 8785 (JCS) bytes: checked against the rfc8785 package for
every kind of message, and for arbitrary plain bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.errors import ValidationError
from hcp.images.cids import Cid
from hcp.oracle.audit import ChallengeResult
from hcp.oracle.challenge import ChallengeAnswer, ImageTarget, build_challenge
from hcp.oracle.evidence import build_bundle
from hcp.oracle.findings import Outcome
from hcp.oracle.heartbeat import Heartbeat
from hcp.oracle.report import ReportAccumulator
from hcp.oracle.wire import MAX_SAFE_INT, canonical, from_ms, to_ms, truncate_ms
from tests.unit.oracle.conftest import World


def test_every_message_kind_is_jcs(world: World) -> None:
    now = world.clock.now()
    hb = Heartbeat.signed(world.providers["prov-a"], 3, now, ("jöb-ü", "任务"), (1, 10000), 5)
    c = build_challenge(world.validators[0], "prov-a",
                        [ImageTarget(Cid.from_digest(b"\4" * 32, 0x70, 0), "blobs/x", 5000)],
                        "round-ß", now, world.settings)
    a = ChallengeAnswer(c.challenge_id, "prov-a", c.cid, c.path, c.offset, c.length, c.nonce,
                        (b"block",), b"\1" * 32, now)
    acc = ReportAccumulator("val-0", now, world.settings)
    acc.expect("prov-a", now)
    bundle = build_bundle("d", "j", "prov-a", now, now + timedelta(hours=1), now, heartbeats=[hb],
                          challenges=[ChallengeResult(c, Outcome.OK, now, 5)])
    for body in (hb.body(), c.body(), a.body(c), acc.build().body(), bundle.body()):
        assert canonical(body) == rfc8785.dumps(body)


_plain = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT) | st.text(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127)), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127)), _plain, max_size=6))
def test_plain_bodies_canonicalise_as_jcs(body: dict) -> None:  # type: ignore[type-arg]
    assert canonical(body) == rfc8785.dumps(body)


@pytest.mark.parametrize("bad", [{"x": 1.5}, {"x": 1 << 53}, {"é": 1}, {"x": b"raw"},
                                 {"x": {1: 2}}])
def test_values_other_libraries_could_write_differently_are_refused(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError):
        canonical(bad)


def test_times_are_exact_milliseconds() -> None:
    t = datetime(2026, 12, 1, 10, 6, 7, 891_999, tzinfo=UTC)
    assert to_ms(t) == 1796119567891 and from_ms(to_ms(t)) == truncate_ms(t)
    with pytest.raises(ValidationError):
        to_ms(datetime(2026, 12, 1))
