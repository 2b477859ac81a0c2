"""The one catalogue of hcp's metrics.

Conventions (https://prometheus.io/docs/practices/naming/): base units in the name's suffix
(``_seconds``, ``_watts``, ``_celsius``, ``_bytes``, ``_usd``), counters end in ``_total``,
ratios in ``_ratio``; every label set is bounded — closed sets are spelled out below, open
labels (``device``, ``facility``, ``route``, ``reason`` ...) are bounded by the platform's
size: the fleet spec, the route table, the error codes. Paths, ids of jobs or workloads, and
customer names are never labels.

Through Ray's metrics agent each name is exported as ``ray_<name>``; the Prometheus
configuration in ``ops/prometheus`` strips that prefix again, so rules, dashboards and the
API query the names written here. Three names are the rental document's own:
``http_requests_total``, ``http_request_duration_seconds`` and ``jobs_created_total``.
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum

from hcp.observability.spec import MetricSpec, MetricUsageError, counter, gauge, histogram

MODES = frozenset({"MINING", "INFERENCE", "RENTED", "IDLE", "CURTAILED"})
KINDS = frozenset({"gpu", "asic"})
DIRECTIONS = frozenset(f"{a}_TO_{b}" for a in MODES for b in MODES if a != b)
PHASES = frozenset({"pause", "save_state", "activate", "health_check"})
OUTCOMES = frozenset({"APPLIED", "NOOP", "FAILED", "TIMEOUT", "RECONCILED_APPLIED",
                      "RECONCILED_NOT_APPLIED"})
WORKLOAD_STATES = frozenset({"queued", "scheduled", "running", "completed", "failed", "cancelled"})
WORKLOAD_TYPES = frozenset({"inference", "embedding", "training", "batch"})
PRIORITIES = frozenset(str(p) for p in range(1, 11))
# Methods outside this set are recorded as OTHER (serve_apps/http_metrics.py).
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"})
NOTARY_STAGES = frozenset({"rate_limit", "parse", "signature", "quota", "task", "replay",
                           "integrity", "extract", "sandbox", "ledger"})
ESCROW_BACKENDS = frozenset({"sql", "chain"})
IMAGE_BACKENDS = frozenset({"embedded", "kubo"})
DEPENDENCIES = frozenset({"postgres", "redis", "chain", "image_store"})
BREAKER_STATES = frozenset({"closed", "open", "half_open"})
CALL_OUTCOMES = frozenset({"ok", "failure", "timeout", "rejected"})

SWITCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# 2 s is a boundary so the rental document's "p95 over 2 s" alert is read off a bucket edge.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0)
QUEUE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
STEP_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
NOTARY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                  300.0, 600.0)
CHAIN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
PULL_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

_DEV = ("device", "facility", "kind")


def _area(name: str, specs: list[MetricSpec]) -> list[MetricSpec]:
    return [replace(s, area=name) for s in specs]


CATALOGUE: tuple[MetricSpec, ...] = tuple(
    _area("fleet", [
        histogram("hcp_switch_duration_seconds", "Time of a committed mode switch, end to end.",
                  ("kind", "direction"), SWITCH_BUCKETS, kind=KINDS, direction=DIRECTIONS),
        histogram("hcp_switch_phase_seconds", "Time of one phase of a mode switch.",
                  ("kind", "direction", "phase"), SWITCH_BUCKETS,
                  kind=KINDS, direction=DIRECTIONS, phase=PHASES),
        counter("hcp_switch_failures_total", "Mode switches refused or failed, by error code.",
                ("kind", "reason"), kind=KINDS),
        gauge("hcp_device_mode", "1 for the mode a device is in, 0 for the others.",
              (*_DEV, "mode"), kind=KINDS, mode=MODES),
        gauge("hcp_device_info", "Always 1: a device's model and telemetry source "
              "(nvml or simulated).", (*_DEV, "model", "telemetry"),
              kind=KINDS, telemetry=frozenset({"nvml", "simulated"})),
        gauge("hcp_device_hashrate_hashes_per_second", "SHA-256d hashes per second.", _DEV,
              kind=KINDS),
        counter("hcp_device_shares_total", "Mining shares found.", _DEV, kind=KINDS),
        gauge("hcp_device_power_watts", "Power drawn by a device.", _DEV, kind=KINDS),
        gauge("hcp_device_temperature_celsius", "Temperature of a device.", _DEV, kind=KINDS),
        gauge("hcp_device_temperature_limit_celsius",
              "Temperature above which a device is over its limit (slowdown threshold).", _DEV,
              kind=KINDS),
        gauge("hcp_device_utilization_ratio", "Busy fraction of a device's active context (0-1).",
              _DEV, kind=KINDS),
        gauge("hcp_facility_power_watts", "Power drawn by a facility's devices.", ("facility",)),
        gauge("hcp_facility_power_cap_watts", "A facility's power cap.", ("facility",)),
    ])
    + _area("economics", [
        gauge("hcp_gpu_hour_revenue_usd", "Expected revenue of one GPU-hour in a mode, at the "
              "latest prices.", ("mode", "model"), mode=MODES),
        gauge("hcp_gpu_hour_profit_usd", "Expected profit (revenue less power) of one GPU-hour "
              "in a mode, at the latest prices.", ("mode", "model"), mode=MODES),
        gauge("hcp_optimizer_period_profit_usd", "Realized profit of the last settled optimizer "
              "period."),
        counter("hcp_optimizer_decisions_total", "Switch decisions issued by the optimizer.",
                ("kind", "to_mode"), kind=KINDS, to_mode=MODES),
        counter("hcp_optimizer_outcomes_total", "Outcomes of the optimizer's decisions.",
                ("status",), status=OUTCOMES),
        counter("hcp_optimizer_steps_total", "Optimizer steps, by result.", ("result",),
                result=frozenset({"decided", "no_tick", "already_processed"})),
        gauge("hcp_optimizer_last_step_timestamp_seconds",
              "Unix time of the optimizer's last step that produced a decision set."),
        gauge("hcp_optimizer_interval_seconds", "Configured seconds between optimizer steps."),
        histogram("hcp_optimizer_step_duration_seconds", "Time of one optimizer step.", (),
                  STEP_BUCKETS),
        histogram("hcp_optimizer_apply_latency_seconds",
                  "Decision broadcast to device acknowledgement.", ("kind",), SWITCH_BUCKETS,
                  kind=KINDS),
    ])
    + _area("workloads", [
        gauge("hcp_workloads", "Workloads by state.", ("state", "type"),
              state=WORKLOAD_STATES, type=WORKLOAD_TYPES),
        histogram("hcp_workload_queue_wait_seconds", "Admission to start of a workload.",
                  ("type", "priority"), QUEUE_BUCKETS, type=WORKLOAD_TYPES, priority=PRIORITIES),
        counter("hcp_workload_preemptions_total", "Mining preempted to run a workload.", ("kind",),
                kind=KINDS),
    ])
    + _area("api", [
        counter("http_requests_total", "HTTP requests answered, by route template and status.",
                ("route", "method", "status"), method=HTTP_METHODS),
        histogram("http_request_duration_seconds", "Time to answer an HTTP request.",
                  ("route", "method"), HTTP_BUCKETS, method=HTTP_METHODS),
        counter("hcp_rate_limit_refusals_total", "Requests refused by a rate limit (429).",
                ("route",)),
    ])
    + _area("notary", [
        histogram("hcp_notary_stage_seconds", "Time spent per notary pipeline stage.",
                  ("stage",), NOTARY_BUCKETS, stage=NOTARY_STAGES),
        counter("hcp_notary_rejections_total", "Refused claims, by error code.", ("reason",)),
        counter("hcp_notary_verified_total", "Verified claims."),
        histogram("hcp_notary_verification_seconds", "Submission to verdict of verified claims.",
                  (), NOTARY_BUCKETS),
    ])
    + _area("marketplace", [
        counter("jobs_created_total", "Rental jobs created (escrow locked)."),
        counter("jobs_completed_total", "Rental jobs completed and settled."),
        counter("jobs_disputed_total", "Rental jobs disputed."),
        counter("hcp_marketplace_settled_amount_total", "Amounts released at settlement, in the "
                "token's smallest unit.", ("party",),
                party=frozenset({"provider", "platform", "refund"})),
        gauge("hcp_escrow_locked_amount", "Amount locked in escrow, in the token's smallest unit.",
              ("backend",), backend=ESCROW_BACKENDS),
        gauge("hcp_escrow_conservation_residual", "Minted minus (free + locked + released) in "
              "the escrow ledger; anything but 0 is a bug.", ("backend",), backend=ESCROW_BACKENDS),
        gauge("hcp_provider_reputation_score", "A provider's on-chain reputation score.",
              ("provider",)),
    ])
    + _area("chain", [
        gauge("hcp_chain_block_height", "Head block number seen by the indexer."),
        gauge("hcp_chain_node_up", "1 when the last JSON-RPC call to the chain node succeeded."),
        gauge("hcp_chain_transactions_pending", "Transactions sent and still awaiting a receipt."),
        gauge("hcp_chain_indexer_lag_blocks", "Head block minus the last block indexed."),
        histogram("hcp_chain_transaction_seconds", "Transaction send to receipt.", (),
                  CHAIN_BUCKETS),
    ])
    + _area("images", [
        gauge("hcp_image_store_size_bytes", "Bytes held by the image store.", ("backend",),
              backend=IMAGE_BACKENDS),
        gauge("hcp_image_store_pins", "Pinned objects in the image store.", ("backend",),
              backend=IMAGE_BACKENDS),
        gauge("hcp_image_store_peers", "Peers the image store's node is connected to.",
              ("backend",), backend=IMAGE_BACKENDS),
        counter("hcp_image_store_gc_runs_total", "Garbage collections of the image store.",
                ("backend",), backend=IMAGE_BACKENDS),
        counter("hcp_image_store_gc_freed_bytes_total", "Bytes freed by garbage collection.",
                ("backend",), backend=IMAGE_BACKENDS),
    ])
    + _area("agent", [
        gauge("hcp_agent_containers", "Containers of the provider agent, by state.",
              ("node", "state"), state=frozenset({"running", "exited", "created"})),
        counter("hcp_agent_image_pulls_total", "Image pulls by the provider agent.",
                ("node", "result"), result=frozenset({"ok", "failed", "verify_failed"})),
        histogram("hcp_agent_image_pull_seconds", "Time to pull and verify an image.", ("node",),
                  PULL_BUCKETS),
    ])
    + _area("validators", [
        counter("hcp_validator_heartbeats_total", "Agent heartbeats checked by a validator.",
                ("validator", "result"), result=frozenset({"ok", "missed", "bad_signature"})),
        counter("hcp_validator_challenges_total", "Possession challenges run by a validator.",
                ("validator", "result"), result=frozenset({"passed", "failed", "timeout"})),
        counter("hcp_validator_penalties_total", "Penalties applied after a quorum.", ("reason",)),
        counter("hcp_validator_quorum_rounds_total", "k-of-n rounds, by whether quorum was "
                "reached.", ("check", "outcome"), check=frozenset({"heartbeat", "challenge"}),
                outcome=frozenset({"reached", "not_reached"})),
    ])
    + _area("dependencies", [
        gauge("hcp_dependency_breaker_state", "1 for the state a dependency's circuit breaker is "
              "in, 0 for the others.", ("dependency", "state"),
              dependency=DEPENDENCIES, state=BREAKER_STATES),
        counter("hcp_dependency_calls_total", "Calls to a dependency through its breaker.",
                ("dependency", "outcome"), dependency=DEPENDENCIES, outcome=CALL_OUTCOMES),
        gauge("hcp_db_connections", "Server connections of the relational store "
              "(pg_stat_activity)."),
    ])
)

BY_NAME: dict[str, MetricSpec] = {s.name: s for s in CATALOGUE}


def spec(name: str) -> MetricSpec:
    try:
        return BY_NAME[name]
    except KeyError:
        raise MetricUsageError(f"{name!r} is not in the metrics catalogue") from None


def switch_direction(from_mode: object, to_mode: object) -> str:
    """The ``direction`` label of a switch, e.g. ``MINING_TO_INFERENCE``."""
    def name(mode: object) -> str:
        return str(mode.value if isinstance(mode, Enum) else mode).upper()

    return f"{name(from_mode)}_TO_{name(to_mode)}"


def series_names() -> frozenset[str]:
    """Every sample name the catalogue's metrics produce."""
    return frozenset(n for s in CATALOGUE for n in s.series_names())
