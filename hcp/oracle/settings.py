"""Settings of the oracle validators (``HCP_ORACLE__*``), one section of ``hcp.config.Settings``.

The numbers the rental document fixes are the defaults: a heartbeat every 60 s, downtime after
more than 3 missed in a row (-50), challenges of 1024 bytes that expire after 30 s, data fraud
-200 and a slash. The rest (quorum, strikes, cadences) are hcp's choices, explained in
docs/oracle.md.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class OracleSettings(BaseModel):
    validators: int = Field(default=3, ge=1, le=64, description="Validators in the set (n).")
    quorum: int = Field(
        default=2, ge=1, le=64,
        description="Validators that must agree before a finding takes effect (k, more than n/2).")
    heartbeat_interval_seconds: int = Field(default=60, gt=0, description="Agent heartbeat period.")
    heartbeat_grace_seconds: int = Field(
        default=10, ge=0, description="Lateness tolerated before a heartbeat counts as missed.")
    heartbeat_max_age_seconds: int = Field(
        default=30, gt=0, description="A heartbeat older than this on arrival is refused as stale.")
    clock_skew_seconds: int = Field(
        default=5, ge=0, description="How far in the future a signed timestamp may be.")
    missed_heartbeats_limit: int = Field(
        default=3, ge=1, description="More missed heartbeats in a row than this: downtime.")
    challenge_bytes: int = Field(default=1024, gt=0, le=1 << 20)
    challenge_expiry_seconds: int = Field(default=30, gt=0, description="Answer deadline.")
    challenge_interval_seconds: int = Field(
        default=360, gt=0, description="Mean time between challenges of a healthy provider.")
    suspect_challenge_interval_seconds: int = Field(
        default=60, gt=0, description="Mean time between challenges of a suspect provider.")
    vote_window_seconds: int = Field(
        default=300, gt=0, description="A subject without a quorum after this is closed, no effect.")
    report_period_seconds: int = Field(default=3600, gt=0, description="Validation report period.")
    downtime_points: int = Field(default=50, ge=0, le=1000)
    timeout_points: int = Field(default=20, ge=0, le=1000)
    data_fraud_points: int = Field(default=200, ge=0, le=1000)
    bad_signature_points: int = Field(default=50, ge=0, le=1000)
    data_fraud_slash_bps: int = Field(
        default=1000, ge=0, le=10_000, description="Share of the stake slashed for data fraud.")
    downtime_strikes: int = Field(default=1, ge=1, description="Confirmed outages before -points.")
    timeout_strikes: int = Field(default=3, ge=1, description="Confirmed timeouts before -points.")
    data_fraud_strikes: int = Field(
        default=2, ge=1, description="Confirmed frauds before -points and slash (1st: warning).")
    bad_signature_strikes: int = Field(default=2, ge=1)
    timeouts_as_fraud_after: int = Field(
        default=6, ge=1,
        description="Consecutive confirmed challenge timeouts while the agent's heartbeats arrive "
        "that count as failed possession (so never answering is not cheaper than lying).")
    clear_after_passes: int = Field(
        default=3, ge=1, description="Consecutive confirmed passes that clear a suspect provider.")

    enabled: bool = Field(
        default=True, description="`hcp run` starts the validator actors and their coordinator.")
    tick_seconds: float = Field(
        default=5.0, gt=0, le=60,
        description="How often validators count missed heartbeats, expire challenges and the "
        "coordinator starts rounds (a miss or an expiry is seen this much late at most).")
    challenge_poll_seconds: float = Field(
        default=5.0, gt=0, description="How often an agent asks for its challenges (well "
        "under the expiry).")

    @model_validator(mode="after")
    def _quorum_is_a_majority(self) -> OracleSettings:
        # With 2k > n at most one outcome can gather k votes, so a subject's decision does not
        # depend on the order votes arrive in.
        if not (self.quorum <= self.validators and 2 * self.quorum > self.validators):
            raise ValueError(f"quorum {self.quorum} of {self.validators} validators must be a "
                             "majority (n/2 < k <= n)")
        if self.challenge_poll_seconds * 2 > self.challenge_expiry_seconds:
            raise ValueError("challenge_poll_seconds must leave an agent half the expiry "
                             "to answer")
        return self
