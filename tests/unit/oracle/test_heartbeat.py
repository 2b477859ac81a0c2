"""Heartbeats: signed by the key bound to the provider's identity, fresh, in order."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from hcp.errors import (
    HeartbeatReplayError,
    OracleSignatureError,
    StaleMessageError,
    UnknownIdentityError,
    ValidationError,
)
from hcp.oracle.heartbeat import Heartbeat, HeartbeatVerifier
from hcp.oracle.signing import Signer
from hcp.oracle.wire import signing_bytes
from tests.unit.oracle.conftest import World


def _verifier(world: World) -> HeartbeatVerifier:
    return HeartbeatVerifier(world.provider_keys, world.settings, world.clock)


def _hb(world: World, seq: int, provider: str = "prov-a", **kw) -> Heartbeat:  # type: ignore[no-untyped-def]
    return Heartbeat.signed(world.providers[provider], seq, world.clock.now(),
                            running_jobs=kw.get("jobs", ("job-1",)),
                            gpu_util_bps=kw.get("gpus", (8500, 0)), uptime_seconds=3600)


def test_a_signed_fresh_heartbeat_is_accepted_and_keeps_its_fields(world: World) -> None:
    v = _verifier(world)
    hb = _hb(world, 1)
    world.clock.advance(seconds=2)
    acc = v.verify(Heartbeat.from_wire(hb.to_wire()))
    assert acc.heartbeat == hb and acc.delay_ms == 2000 and v.last_seq("prov-a") == 1
    assert hb.to_wire()["jobs"] == ["job-1"] and hb.to_wire()["gpu_util_bps"] == [8500, 0]


def test_the_signed_bytes_are_canonical_json_with_a_domain_prefix(world: World) -> None:
    hb = _hb(world, 7)
    msg = signing_bytes("heartbeat", hb.body())
    assert msg.startswith(b"hcp-oracle/heartbeat/v1\n{\"gpu_util_bps\":[8500,0],\"jobs\":")
    world.providers["prov-a"].key.verify_key.verify(msg, hb.signature)


def test_replayed_and_older_sequence_numbers_are_refused(world: World) -> None:
    v = _verifier(world)
    first, second = _hb(world, 5), _hb(world, 6)
    v.verify(first)
    v.verify(second)
    with pytest.raises(HeartbeatReplayError) as e:
        v.verify(first)
    assert e.value.code == "heartbeat_replayed" and e.value.http_status == 403
    with pytest.raises(HeartbeatReplayError):
        v.verify(second)
    assert v.last_seq("prov-a") == 6


def test_stale_and_future_heartbeats_are_refused(world: World) -> None:
    v = _verifier(world)
    old = _hb(world, 1)
    world.clock.advance(seconds=world.settings.heartbeat_max_age_seconds + 1)
    with pytest.raises(StaleMessageError):
        v.verify(old)
    future = Heartbeat.signed(world.providers["prov-a"], 2,
                              world.clock.now() + timedelta(seconds=30))
    with pytest.raises(StaleMessageError):
        v.verify(future)
    assert v.last_seq("prov-a") is None  # refusals leave no trace


def test_a_heartbeat_signed_by_another_key_is_refused_and_does_not_advance(world: World) -> None:
    v = _verifier(world)
    impostor = Signer.generate("prov-a")  # claims prov-a's identity with its own key
    with pytest.raises(OracleSignatureError):
        v.verify(Heartbeat.signed(impostor, 9, world.clock.now()))
    assert v.last_seq("prov-a") is None
    v.verify(_hb(world, 1))  # the real provider's next heartbeat still counts


def test_fields_are_bound_by_the_signature(world: World) -> None:
    v = _verifier(world)
    hb = _hb(world, 3)
    for forged in (replace(hb, running_jobs=()), replace(hb, gpu_util_bps=(10000, 10000)),
                   replace(hb, seq=4), replace(hb, provider_id="prov-b")):
        with pytest.raises(OracleSignatureError):
            v.verify(forged)


def test_unknown_revoked_and_rotated_keys(world: World) -> None:
    v = _verifier(world)
    stranger = Signer.generate("prov-z")
    with pytest.raises(UnknownIdentityError):
        v.verify(Heartbeat.signed(stranger, 1, world.clock.now()))
    world.provider_keys.register("prov-z", stranger.public_key)
    v.verify(Heartbeat.signed(stranger, 1, world.clock.now()))
    rotated = Signer.generate("prov-z")
    world.provider_keys.register("prov-z", rotated.public_key)
    with pytest.raises(OracleSignatureError):  # the old key no longer speaks for prov-z
        v.verify(Heartbeat.signed(stranger, 2, world.clock.now()))
    v.verify(Heartbeat.signed(rotated, 2, world.clock.now()))
    world.provider_keys.revoke("prov-z")
    with pytest.raises(UnknownIdentityError):
        v.verify(Heartbeat.signed(rotated, 3, world.clock.now()))


def test_restore_reloads_the_last_sequence_numbers(world: World) -> None:
    v = _verifier(world)
    v.restore({"prov-a": 41})
    with pytest.raises(HeartbeatReplayError):
        v.verify(_hb(world, 41))
    assert v.verify(_hb(world, 42)).heartbeat.seq == 42


@pytest.mark.parametrize("patch", [
    {"seq": -1}, {"seq": True}, {"seq": 1 << 60}, {"provider": ""}, {"jobs": "job"},
    {"jobs": [1]}, {"gpu_util_bps": [10001]}, {"gpu_util_bps": [1.5]}, {"signature": "ab"},
    {"signature": "Z" * 128}, {"sent_at": "2026-12-01T00:00:00Z"}, {"jobs": ["j"] * 257},
])
def test_malformed_wire_heartbeats_are_validation_errors(world: World, patch: dict) -> None:  # type: ignore[type-arg]
    wire = {**_hb(world, 1).to_wire(), **patch}
    with pytest.raises(ValidationError):
        Heartbeat.from_wire(wire)


def test_missing_field_and_non_object(world: World) -> None:
    wire = _hb(world, 1).to_wire()
    del wire["uptime_s"]
    with pytest.raises(ValidationError):
        Heartbeat.from_wire(wire)
    with pytest.raises(ValidationError):
        Heartbeat.from_wire([1, 2])
