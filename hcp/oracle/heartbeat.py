"""The provider agent's heartbeat and its verification by a validator.

Every 60 s the agent signs (provider id, sequence number, time, running jobs, GPU
utilisation, its own uptime) with the Ed25519 key registered for the provider. A validator
accepts it only if the key registered for the id it names signed exactly those fields, it is
fresh (not older than ``heartbeat_max_age_seconds``, not dated in the future beyond the clock
skew) and its sequence number is above the last one accepted from that provider; everything
else is a typed refusal, so a replayed or stale heartbeat never counts as a sign of life.

The sequence number must grow for the provider's whole life: an agent that cannot keep a
counter across restarts uses the millisecond time of sending, which grows by itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hcp.clock import Clock
from hcp.errors import (
    HeartbeatReplayError,
    OracleSignatureError,
    StaleMessageError,
    UnknownIdentityError,
    ValidationError,
)
from hcp.oracle.settings import OracleSettings
from hcp.oracle.signing import KeyRegistry, Signer, Verifier
from hcp.oracle.wire import MAX_SAFE_INT, Fields, to_ms, truncate_ms

log = logging.getLogger(__name__)

DOMAIN = "heartbeat"
MAX_JOBS = 256
MAX_GPUS = 64
BPS = 10_000


@dataclass(frozen=True, slots=True)
class Heartbeat:
    provider_id: str
    seq: int
    sent_at: datetime
    running_jobs: tuple[str, ...] = ()
    gpu_util_bps: tuple[int, ...] = ()  # per GPU, basis points (8500 = 85 %)
    uptime_seconds: int = 0              # the agent's own, since it started
    signature: bytes = b""

    def body(self) -> dict[str, Any]:
        return {"provider": self.provider_id, "seq": self.seq, "sent_at": to_ms(self.sent_at),
                "jobs": list(self.running_jobs), "gpu_util_bps": list(self.gpu_util_bps),
                "uptime_s": self.uptime_seconds}

    @classmethod
    def signed(cls, signer: Signer, seq: int, sent_at: datetime,
               running_jobs: tuple[str, ...] = (), gpu_util_bps: tuple[int, ...] = (),
               uptime_seconds: int = 0) -> Heartbeat:
        hb = cls(signer.identity, seq, truncate_ms(sent_at), tuple(running_jobs),
                 tuple(gpu_util_bps), uptime_seconds)
        hb.check_bounds()
        return cls(hb.provider_id, hb.seq, hb.sent_at, hb.running_jobs, hb.gpu_util_bps,
                   hb.uptime_seconds, signer.sign(DOMAIN, hb.body()))

    def check_bounds(self) -> None:
        if not 1 <= len(self.provider_id) <= 128:
            raise ValidationError("a provider id has 1..128 characters")
        if not 0 <= self.seq <= MAX_SAFE_INT or not 0 <= self.uptime_seconds <= MAX_SAFE_INT:
            raise ValidationError("seq and uptime must be non-negative 53-bit integers")
        if len(self.running_jobs) > MAX_JOBS or any(not 1 <= len(j) <= 128 for j in self.running_jobs):
            raise ValidationError(f"at most {MAX_JOBS} running jobs, ids of 1..128 characters")
        if len(self.gpu_util_bps) > MAX_GPUS or any(not 0 <= u <= BPS for u in self.gpu_util_bps):
            raise ValidationError(f"at most {MAX_GPUS} GPUs, utilisation in 0..{BPS} bps")

    def to_wire(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature.hex()}

    @classmethod
    def from_wire(cls, obj: Any) -> Heartbeat:
        f = Fields(obj, "heartbeat")
        jobs = f.items("jobs", MAX_JOBS)
        gpus = f.items("gpu_util_bps", MAX_GPUS)
        if not all(isinstance(j, str) for j in jobs):
            raise ValidationError("heartbeat.jobs must be job id strings", field="jobs")
        if not all(isinstance(u, int) and not isinstance(u, bool) for u in gpus):
            raise ValidationError("heartbeat.gpu_util_bps must be integers", field="gpu_util_bps")
        hb = cls(f.text("provider"), f.integer("seq"), f.time("sent_at"), tuple(jobs),
                 tuple(gpus), f.integer("uptime_s"), f.hexbytes("signature", 64))
        hb.check_bounds()
        return hb


@dataclass(frozen=True, slots=True)
class AcceptedHeartbeat:
    heartbeat: Heartbeat
    received_at: datetime

    @property
    def provider_id(self) -> str:
        return self.heartbeat.provider_id

    @property
    def delay_ms(self) -> int:
        return max(0, to_ms(self.received_at) - to_ms(self.heartbeat.sent_at))


class HeartbeatVerifier:
    """One validator's check of incoming heartbeats. It keeps the last accepted sequence
    number per provider (``restore`` reloads them after a restart). One caller at a time:
    a validator actor handles its messages in turn."""

    def __init__(self, providers: KeyRegistry, settings: OracleSettings, clock: Clock) -> None:
        self.verifier = Verifier(providers)
        self.clock = clock
        self.max_age = timedelta(seconds=settings.heartbeat_max_age_seconds)
        self.skew = timedelta(seconds=settings.clock_skew_seconds)
        self._last_seq: dict[str, int] = {}

    def verify(self, hb: Heartbeat) -> AcceptedHeartbeat:
        now = self.clock.now()
        pid = hb.provider_id
        # Freshness and order are checked before the signature (both are refusals either
        # way), so a flood of replays costs no Ed25519 work; state changes only after it.
        if hb.sent_at < now - self.max_age:
            raise StaleMessageError("heartbeat is too old", provider=pid,
                                    age_ms=to_ms(now) - to_ms(hb.sent_at))
        if hb.sent_at > now + self.skew:
            raise StaleMessageError("heartbeat is dated in the future", provider=pid)
        last = self._last_seq.get(pid)
        if last is not None and hb.seq <= last:
            raise HeartbeatReplayError("heartbeat sequence number already seen", provider=pid,
                                       seq=hb.seq, last_seq=last)
        if not self.verifier.known(pid):
            raise UnknownIdentityError("no key is registered for this provider", provider=pid)
        if not self.verifier.verify(pid, DOMAIN, hb.body(), hb.signature):
            raise OracleSignatureError("heartbeat signature does not verify under the "
                                       "provider's registered key", provider=pid)
        self._last_seq[pid] = hb.seq
        return AcceptedHeartbeat(hb, now)

    def last_seq(self, provider_id: str) -> int | None:
        return self._last_seq.get(provider_id)

    def restore(self, last_seqs: dict[str, int]) -> None:
        for pid, seq in last_seqs.items():
            if seq > self._last_seq.get(pid, -1):
                self._last_seq[pid] = seq
