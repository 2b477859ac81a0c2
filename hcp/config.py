"""The one Settings object, grouped by area. Every knob is an ``HCP_`` environment variable.

Sections read ``HCP_<SECTION>__<FIELD>`` (``HCP_API__PORT=9000``). The flat names used before
the sections existed (``HCP_API_PORT``, ``Settings(api_port=9000)``) are still accepted and
mapped onto their section, so existing deployments and scripts keep working.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from hcp.agent.settings import AgentSettings
from hcp.images.settings import ImagesSettings
from hcp.observability.settings import OpsSettings
from hcp.oracle.settings import OracleSettings

DEFAULT_FLEET_SPEC = Path(__file__).parent / "data" / "fleet.local.yaml"


class RaySettings(BaseModel):
    """Ray: the cluster the platform runs on."""

    address: str | None = Field(default=None, description="Existing cluster; None starts a local one.")
    namespace: str = "hcp"
    temp_dir: Path | None = None
    node_ip: str = Field(
        default="127.0.0.1",
        description="Address a local cluster's services bind (loopback: Ray's ports, metrics "
        "exporter included, are not reachable from the network).")
    actor_max_restarts: int = -1
    start_timeout_seconds: float = Field(
        default=300.0, gt=0,
        description="How long a launch waits for actors to answer before it fails (a cluster "
        "without room for them would otherwise wait for ever).")


class FleetSettings(BaseModel):
    """GPU actors: mining, inference, checkpoints."""

    local_gpu_cpus: float = Field(
        default=0.25, gt=0, description="Ray CPU share reserved per simulated GPU actor."
    )
    mining_cpu_share: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="Share of one core each CPU-backed (simulated) GPU may spend mining.",
    )
    cpu_mining_backend: Literal["auto", "hashlib", "numpy", "numba", "torch-cpu", "torch-cuda"] = Field(
        default="numba", description="SHA-256d backend of CPU-backed GPUs.")
    mining_batch_nonces: int = Field(
        default=4096, gt=0, description="Nonces per CPU mining batch (~1 ms on the numba backend)."
    )
    mining_batch_nonces_gpu: int = Field(default=1 << 22, gt=0, description="Nonces per CUDA batch.")
    share_difficulty: float = Field(default=1 / 4096, gt=0, description="Pool share difficulty.")
    checkpoint_seconds: float = Field(default=5.0, gt=0, description="How often counters are persisted.")
    inference_model: str = "all-MiniLM-L6-v2"
    inference_device: str | None = Field(default=None, description="torch device; None picks cuda if present.")


class AuthSettings(BaseModel):
    """API tokens."""

    jwt_secret: str | None = Field(
        default=None,
        description="HS256 secret for API tokens; None: a random secret kept in HCP_HOME/jwt.secret.",
    )
    jwt_ttl_seconds: int = Field(default=24 * 3600, gt=0, description="Lifetime of issued tokens.")


class OptimizerSettings(BaseModel):
    """The economic optimizer and its price feed."""

    interval_seconds: float = Field(
        default=5.0, gt=0, description="Seconds between optimizer steps (tick, decide, broadcast)."
    )
    apply_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long a broadcast waits for devices to acknowledge."
    )
    feed: Literal["simulator", "replay"] = Field(
        default="simulator",
        description="Price feed of the optimizer: 'simulator' or 'replay' (packaged 2022H1 series).",
    )
    feed_seed: int = Field(default=7, description="Seed of the market simulator feed.")
    threshold_pct: float = Field(
        default=5.0, ge=0, description="Live policy: advantage (%) another mode needs before a switch."
    )
    dwell_seconds: float = Field(
        default=60.0, ge=0, description="Live policy: how long the advantage must hold before a switch."
    )


class RouterSettings(BaseModel):
    """The workload router and metering."""

    tick_seconds: float = Field(
        default=0.25, gt=0, description="Router loop period: schedule queued work, end expired work."
    )
    coalesce_seconds: float = Field(
        default=0.05, ge=0,
        description="Pause after a scheduling pass so a burst of admissions shares the next one; "
        "real-time (priority >= 8) admissions cut it short.")
    max_queued: int = Field(default=200_000, gt=0, description="Queued workloads before refusal.")
    gpu_price_micro_usd_per_hour: dict[str, int] = Field(
        # Medians of the 2024 cloud rental offers in data/gpu_rental_prices_2024.csv, per GPU model.
        default_factory=lambda: {"H100": 3_540_000, "A100": 2_205_000, "L40S": 1_090_000,
                                 "L40": 1_140_000, "A10": 750_000, "RTX 4090": 540_000},
        description="Metered price per GPU-hour by model, integer micro-USD.",
    )
    default_gpu_price_micro_usd_per_hour: int = Field(
        default=2_000_000, ge=0, description="Price of a GPU model missing from the price table."
    )


class ApiSettings(BaseModel):
    """The HTTP API on Ray Serve."""

    host: str = Field(default="127.0.0.1", description="Address the Serve HTTP proxy binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port of the Serve HTTP proxy.")
    route_prefix: str = Field(default="/", pattern=r"^/[A-Za-z0-9/_-]*$",
                                  description="Where the API is mounted on the Serve proxy.")
    rate_limit: int = Field(default=600, gt=0, description="Requests per client per window.")
    rate_window_seconds: int = Field(default=60, gt=0, description="Rate-limit window.")
    anonymous_rate_limit: int = Field(
        default=120, gt=0,
        description="Requests per client address per window for callers without a token.")
    rate_limit_backend: Literal["sql", "redis", "memory"] = Field(
        default="sql",
        description="Where per-client API rate counters live: the SQL store, Redis, or in process.")
    redis_url: str | None = Field(default=None, description="Redis URL when the backend is redis.")
    ws_heartbeat_seconds: float = Field(default=15.0, gt=0, description="WebSocket heartbeat period.")
    live_poll_seconds: float = Field(default=0.2, gt=0, description="Event-log poll period (live).")
    embed_batch_size: int = Field(default=32, gt=0, description="Max requests per embeddings batch.")
    embed_batch_wait_s: float = Field(default=0.005, ge=0, description="Batch fill wait (seconds).")
    snapshot_fresh_seconds: float = Field(
        default=0.5, ge=0,
        description="Fleet reports and profitability younger than this are served from the "
        "replica's snapshot without asking the actors.")
    snapshot_max_age_seconds: float = Field(
        default=5.0, ge=0,
        description="Up to this age a snapshot is served while it reloads in the background; "
        "older ones are reloaded before answering (0: always ask the actors).")
    max_json_bytes: int = Field(
        default=1 << 20, gt=0, description="Largest JSON request body (413 above).")
    max_json_depth: int = Field(
        default=64, gt=0, le=1000, description="Deepest nesting of a JSON request body (400 above).")
    max_ws_message_bytes: int = Field(
        default=64 << 10, gt=0, description="Largest WebSocket message a client may send.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For is believed; none by "
        "default, so a client cannot pick the address its limits are counted under.")
    rate_max_lease: int = Field(
        default=256, ge=1,
        description="Most rate-limit hits a replica leases from the shared counter at once "
        "(and at most a twentieth of the limit).")


class NotarySettings(BaseModel):
    """The notary of miners' claims."""

    redis_url: str | None = Field(
        default=None,
        description="Redis for nonces and rate counters (production); None keeps them in SQL.",
    )
    miner_limit: int = Field(default=10, gt=0, description="Claims per miner per window.")
    miner_window_seconds: int = Field(default=3600, gt=0)
    client_limit: int = Field(
        default=120, gt=0, description="Requests per client address per window (flood guard)."
    )
    client_window_seconds: int = Field(default=60, gt=0)
    nonce_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    max_artifact_bytes: int = Field(default=16 << 20, gt=0, description="Upload cap (413).")
    max_extracted_bytes: int = Field(default=64 << 20, gt=0)
    max_artifact_files: int = Field(default=16, gt=0)
    max_payload_bytes: int = Field(default=4096, gt=0)
    score_tolerance: float = Field(default=0.001, ge=0)
    sandbox_mode: Literal["wasm", "docker"] = Field(default="wasm",
                                                   description="wasm (wasmtime) or docker.")
    sandbox_fuel: int = Field(default=200_000_000_000, gt=0)
    sandbox_memory_bytes: int = Field(default=1 << 30, gt=0)
    sandbox_max_timeout_seconds: float = Field(default=600.0, gt=0)
    sandbox_max_stdout_bytes: int = Field(default=64 << 10, gt=0)
    sandbox_workers: int = Field(default=2, gt=0, description="Sandbox actors (or threads).")
    sandbox_queue: int = Field(
        default=8, ge=0, description="Claims that may wait for a sandbox before 503."
    )
    slash_base_bps: int = Field(
        default=500, ge=0, le=10_000, description="First slash, in basis points of the stake."
    )
    task_cache_seconds: float = Field(default=5.0, ge=0)


class ChainSettings(BaseModel):
    """The EVM chain."""

    rpc_url: str | None = Field(
        default=None, description="EVM JSON-RPC URL (anvil, geth); None: in-process py-evm chain."
    )
    deployment: Path | None = Field(
        default=None, description="JSON file of deployed contract addresses (hcp.marketplace.chain.Deployment)."
    )
    operator_key: str | None = Field(
        default=None, description="Hex key of the operator/oracle; None: the node's first unlocked account."
    )
    wallet_seed: str | None = Field(
        default=None, description="Seed of custodial account keys; None: random, kept in HCP_HOME/chain.seed."
    )
    confirmations: int = Field(default=0, ge=0, description="Blocks behind head the indexer trusts.")
    reorg_window: int = Field(default=64, gt=0, description="Recent block hashes kept for re-orgs.")
    poll_seconds: float = Field(default=1.0, gt=0, description="Indexer polling interval.")
    receipt_timeout_seconds: float = Field(default=120.0, gt=0, description="Receipt wait limit.")


class MarketplaceSettings(BaseModel):
    """The GPU rental marketplace."""

    escrow_backend: Literal["sql", "chain"] = Field(
        default="sql", description="Escrow ledger of the marketplace: 'sql' (embedded) or 'chain'."
    )
    platform_account: str = Field(default="platform", description="Account paid the 2% fee.")
    oracles: list[str] = Field(
        default_factory=list, description="Token subjects (besides admins) allowed to resolve disputes."
    )
    login_ttl_seconds: int = Field(default=300, gt=0, description="Wallet challenge lifetime.")
    login_domain: str = Field(default="hcp.local", description="EIP-4361 domain of challenges.")
    chain_id: int = Field(default=1337, gt=0, description="Chain id named in wallet challenges.")
    max_job_seconds: int = Field(default=30 * 24 * 3600, gt=0, description="Longest job.")
    response_max_seconds: int = Field(
        default=3600, gt=0, description="Accept latency that scores 0 on the reputation's response term."
    )
    dispute_penalty: int = Field(
        default=50, ge=0, le=1000,
        description="Reputation points taken for a provider-fault dispute (the rental design's 50, "
        "as the chain's Marketplace.DISPUTE_LOST_PENALTY: one table on both ledgers).")


# The flat names of before the sections: (section, field). Keyword arguments and
# environment variables with these names still work.
LEGACY_FIELDS: dict[str, tuple[str, str]] = {
    "ray_address": ("ray", "address"),
    "ray_namespace": ("ray", "namespace"),
    "ray_temp_dir": ("ray", "temp_dir"),
    "ray_node_ip": ("ray", "node_ip"),
    "actor_max_restarts": ("ray", "actor_max_restarts"),
    "local_gpu_cpus": ("fleet", "local_gpu_cpus"),
    "mining_cpu_share": ("fleet", "mining_cpu_share"),
    "cpu_mining_backend": ("fleet", "cpu_mining_backend"),
    "mining_batch_nonces": ("fleet", "mining_batch_nonces"),
    "mining_batch_nonces_gpu": ("fleet", "mining_batch_nonces_gpu"),
    "share_difficulty": ("fleet", "share_difficulty"),
    "checkpoint_seconds": ("fleet", "checkpoint_seconds"),
    "inference_model": ("fleet", "inference_model"),
    "inference_device": ("fleet", "inference_device"),
    "jwt_secret": ("auth", "jwt_secret"),
    "jwt_ttl_seconds": ("auth", "jwt_ttl_seconds"),
    "optimizer_interval_seconds": ("optimizer", "interval_seconds"),
    "optimizer_apply_timeout_seconds": ("optimizer", "apply_timeout_seconds"),
    "optimizer_feed": ("optimizer", "feed"),
    "optimizer_feed_seed": ("optimizer", "feed_seed"),
    "optimizer_threshold_pct": ("optimizer", "threshold_pct"),
    "optimizer_dwell_seconds": ("optimizer", "dwell_seconds"),
    "router_tick_seconds": ("router", "tick_seconds"),
    "router_coalesce_seconds": ("router", "coalesce_seconds"),
    "router_max_queued": ("router", "max_queued"),
    "gpu_price_micro_usd_per_hour": ("router", "gpu_price_micro_usd_per_hour"),
    "default_gpu_price_micro_usd_per_hour": ("router", "default_gpu_price_micro_usd_per_hour"),
    "api_host": ("api", "host"),
    "api_port": ("api", "port"),
    "api_route_prefix": ("api", "route_prefix"),
    "api_rate_limit": ("api", "rate_limit"),
    "api_rate_window_seconds": ("api", "rate_window_seconds"),
    "api_anonymous_rate_limit": ("api", "anonymous_rate_limit"),
    "api_rate_limit_backend": ("api", "rate_limit_backend"),
    "api_redis_url": ("api", "redis_url"),
    "api_ws_heartbeat_seconds": ("api", "ws_heartbeat_seconds"),
    "api_live_poll_seconds": ("api", "live_poll_seconds"),
    "api_embed_batch_size": ("api", "embed_batch_size"),
    "api_embed_batch_wait_s": ("api", "embed_batch_wait_s"),
    "api_snapshot_fresh_seconds": ("api", "snapshot_fresh_seconds"),
    "api_snapshot_max_age_seconds": ("api", "snapshot_max_age_seconds"),
    "api_max_json_bytes": ("api", "max_json_bytes"),
    "api_max_json_depth": ("api", "max_json_depth"),
    "api_max_ws_message_bytes": ("api", "max_ws_message_bytes"),
    "api_trusted_proxies": ("api", "trusted_proxies"),
    "api_rate_max_lease": ("api", "rate_max_lease"),
    "notary_redis_url": ("notary", "redis_url"),
    "notary_miner_limit": ("notary", "miner_limit"),
    "notary_miner_window_seconds": ("notary", "miner_window_seconds"),
    "notary_client_limit": ("notary", "client_limit"),
    "notary_client_window_seconds": ("notary", "client_window_seconds"),
    "notary_nonce_ttl_seconds": ("notary", "nonce_ttl_seconds"),
    "notary_max_artifact_bytes": ("notary", "max_artifact_bytes"),
    "notary_max_extracted_bytes": ("notary", "max_extracted_bytes"),
    "notary_max_artifact_files": ("notary", "max_artifact_files"),
    "notary_max_payload_bytes": ("notary", "max_payload_bytes"),
    "notary_score_tolerance": ("notary", "score_tolerance"),
    "notary_sandbox_mode": ("notary", "sandbox_mode"),
    "notary_sandbox_fuel": ("notary", "sandbox_fuel"),
    "notary_sandbox_memory_bytes": ("notary", "sandbox_memory_bytes"),
    "notary_sandbox_max_timeout_seconds": ("notary", "sandbox_max_timeout_seconds"),
    "notary_sandbox_max_stdout_bytes": ("notary", "sandbox_max_stdout_bytes"),
    "notary_sandbox_workers": ("notary", "sandbox_workers"),
    "notary_sandbox_queue": ("notary", "sandbox_queue"),
    "notary_slash_base_bps": ("notary", "slash_base_bps"),
    "notary_task_cache_seconds": ("notary", "task_cache_seconds"),
    "chain_rpc_url": ("chain", "rpc_url"),
    "chain_deployment": ("chain", "deployment"),
    "chain_operator_key": ("chain", "operator_key"),
    "chain_wallet_seed": ("chain", "wallet_seed"),
    "chain_confirmations": ("chain", "confirmations"),
    "chain_reorg_window": ("chain", "reorg_window"),
    "chain_poll_seconds": ("chain", "poll_seconds"),
    "chain_receipt_timeout_seconds": ("chain", "receipt_timeout_seconds"),
    "marketplace_escrow_backend": ("marketplace", "escrow_backend"),
    "marketplace_platform_account": ("marketplace", "platform_account"),
    "marketplace_oracles": ("marketplace", "oracles"),
    "marketplace_login_ttl_seconds": ("marketplace", "login_ttl_seconds"),
    "marketplace_login_domain": ("marketplace", "login_domain"),
    "marketplace_chain_id": ("marketplace", "chain_id"),
    "marketplace_max_job_seconds": ("marketplace", "max_job_seconds"),
    "marketplace_response_max_seconds": ("marketplace", "response_max_seconds"),
    "marketplace_dispute_penalty": ("marketplace", "dispute_penalty"),
}


def _nest_legacy(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for flat, (section, name) in LEGACY_FIELDS.items():
        if flat in out:
            value = out.pop(flat)
            sec = out.get(section)
            if isinstance(sec, BaseModel):
                sec = sec.model_dump()
            sec = dict(sec or {})
            sec.setdefault(name, value)
            out[section] = sec
    return out


class _LegacyEnv(PydanticBaseSettingsSource):
    """``HCP_API_PORT``-style variables, mapped onto their sections."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for flat, (section, name) in LEGACY_FIELDS.items():
            raw = os.environ.get(f"HCP_{flat.upper()}")
            if raw is not None:
                found.setdefault(section, {})[name] = _decode(raw)
        return found


def _decode(raw: str) -> Any:
    """Lists and maps come as JSON, as pydantic-settings reads them for complex fields."""
    import json

    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HCP_", env_file=None, extra="ignore",
                                      env_nested_delimiter="__")

    home: Path = Field(default=Path("~/.hcp"), description="State directory (SQLite file, artifacts).")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; PostgreSQL in production. Default: SQLite file under HCP_HOME.",
    )
    fleet_spec: Path = Field(default=DEFAULT_FLEET_SPEC, description="Fleet spec YAML file.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    images: ImagesSettings = Field(default_factory=ImagesSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)
    # --- oracle validators (issue 14): HCP_ORACLE__QUORUM, ... ---
    oracle: OracleSettings = Field(default_factory=OracleSettings)

    ray: RaySettings = Field(default_factory=RaySettings)
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    optimizer: OptimizerSettings = Field(default_factory=OptimizerSettings)
    router: RouterSettings = Field(default_factory=RouterSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    notary: NotarySettings = Field(default_factory=NotarySettings)
    chain: ChainSettings = Field(default_factory=ChainSettings)
    marketplace: MarketplaceSettings = Field(default_factory=MarketplaceSettings)

    @model_validator(mode="before")
    @classmethod
    def _accept_legacy_names(cls, values: Any) -> Any:
        return _nest_legacy(values) if isinstance(values, dict) else values

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Init values first, then the sectioned env vars, then the flat legacy ones.
        return (init_settings, env_settings, _LegacyEnv(settings_cls), dotenv_settings,
                file_secret_settings)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed: top-level or flat legacy names
        (``with_(optimizer_feed="replay")``) or whole sections."""
        values = self.model_dump()
        for key, value in changes.items():
            if key in LEGACY_FIELDS:
                section, name = LEGACY_FIELDS[key]
                values[section][name] = value
            else:
                values[key] = value.model_dump() if isinstance(value, BaseModel) else value
        return type(self).model_validate(values)

    # --- provider agent and instances (issue 13): HCP_AGENT__SLOTS, HCP_AGENT__TOKEN, ... ---
    agent: AgentSettings = Field(default_factory=AgentSettings)

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, v: Path) -> Path:
        return v.expanduser()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'hcp.db'}"



@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def prepare_home(settings: Settings) -> Path:
    """HCP_HOME, created (or tightened) so only its owner can read it: it holds the SQLite
    store, the JWT secret, the chain seed and the notary's artifacts."""
    import os

    home = settings.home
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if home.stat().st_mode & 0o077 and home.stat().st_uid == os.getuid():
            home.chmod(0o700)
    except OSError:
        pass  # a home we may not change: its files are still created private
    return home


def secret_file(path: Path) -> Path:
    """``path`` holding a random 64-hex-digit token, readable by its owner only; created once
    (O_EXCL: two processes starting at once agree on the first one's token)."""
    import secrets

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    return path
