"""The one Settings object. Every knob is an ``HCP_`` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hcp.agent.settings import AgentSettings
from hcp.images.settings import ImagesSettings
from hcp.observability.settings import OpsSettings

DEFAULT_FLEET_SPEC = Path(__file__).parent / "data" / "fleet.local.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HCP_", env_file=None, extra="ignore",
                                      env_nested_delimiter="__")

    home: Path = Field(default=Path("~/.hcp"), description="State directory (SQLite file, artifacts).")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; PostgreSQL in production. Default: SQLite file under HCP_HOME.",
    )
    fleet_spec: Path = Field(default=DEFAULT_FLEET_SPEC, description="Fleet spec YAML file.")
    log_level: str = "INFO"

    # Ray
    ray_address: str | None = Field(default=None, description="Existing cluster; None starts a local one.")
    ray_namespace: str = "hcp"
    ray_temp_dir: Path | None = None
    ray_node_ip: str = Field(
        default="127.0.0.1",
        description="Address a local cluster's services bind (loopback: Ray's ports, metrics "
        "exporter included, are not reachable from the network).")
    actor_max_restarts: int = -1

    # Fleet
    local_gpu_cpus: float = Field(
        default=0.25, gt=0, description="Ray CPU share reserved per simulated GPU actor."
    )
    mining_cpu_share: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="Share of one core each CPU-backed (simulated) GPU may spend mining.",
    )
    cpu_mining_backend: str = Field(default="numba", description="SHA-256d backend of CPU-backed GPUs.")
    mining_batch_nonces: int = Field(
        default=4096, gt=0, description="Nonces per CPU mining batch (~1 ms on the numba backend)."
    )
    mining_batch_nonces_gpu: int = Field(default=1 << 22, gt=0, description="Nonces per CUDA batch.")
    share_difficulty: float = Field(default=1 / 4096, gt=0, description="Pool share difficulty.")
    checkpoint_seconds: float = Field(default=5.0, gt=0, description="How often counters are persisted.")
    inference_model: str = "all-MiniLM-L6-v2"
    inference_device: str | None = Field(default=None, description="torch device; None picks cuda if present.")

    # Auth (JWT bearer tokens)
    jwt_secret: str | None = Field(
        default=None,
        description="HS256 secret for API tokens; None: a random secret kept in HCP_HOME/jwt.secret.",
    )
    jwt_ttl_seconds: int = Field(default=24 * 3600, gt=0, description="Lifetime of issued tokens.")

    # --- optimizer and market (issue 3) ---
    optimizer_interval_seconds: float = Field(
        default=5.0, gt=0, description="Seconds between optimizer steps (tick, decide, broadcast)."
    )
    optimizer_apply_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long a broadcast waits for devices to acknowledge."
    )
    optimizer_feed: str = Field(
        default="simulator", pattern="^(simulator|replay)$",
        description="Price feed of the optimizer: 'simulator' or 'replay' (packaged 2022H1 series).",
    )
    optimizer_feed_seed: int = Field(default=7, description="Seed of the market simulator feed.")
    optimizer_threshold_pct: float = Field(
        default=5.0, ge=0, description="Live policy: advantage (%) another mode needs before a switch."
    )
    optimizer_dwell_seconds: float = Field(
        default=60.0, ge=0, description="Live policy: how long the advantage must hold before a switch."
    )

    # --- HTTP API, workloads and router (issue 4) ---
    router_tick_seconds: float = Field(
        default=0.25, gt=0, description="Router loop period: schedule queued work, end expired work."
    )
    router_coalesce_seconds: float = Field(
        default=0.05, ge=0,
        description="Pause after a scheduling pass so a burst of admissions shares the next one; "
        "real-time (priority >= 8) admissions cut it short.")
    router_max_queued: int = Field(default=200_000, gt=0, description="Queued workloads before refusal.")
    gpu_price_micro_usd_per_hour: dict[str, int] = Field(
        # Medians of the 2024 cloud rental offers in data/gpu_rental_prices_2024.csv, per GPU model.
        default_factory=lambda: {"H100": 3_540_000, "A100": 2_205_000, "L40S": 1_090_000,
                                 "L40": 1_140_000, "A10": 750_000, "RTX 4090": 540_000},
        description="Metered price per GPU-hour by model, integer micro-USD.",
    )
    default_gpu_price_micro_usd_per_hour: int = Field(
        default=2_000_000, ge=0, description="Price of a GPU model missing from the price table."
    )
    api_host: str = Field(default="127.0.0.1", description="Address the Serve HTTP proxy binds.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port of the Serve HTTP proxy.")
    api_rate_limit: int = Field(default=600, gt=0, description="Requests per client per window.")
    api_rate_window_seconds: int = Field(default=60, gt=0, description="Rate-limit window.")
    api_anonymous_rate_limit: int = Field(
        default=120, gt=0,
        description="Requests per client address per window for callers without a token.")
    api_rate_limit_backend: str = Field(
        default="sql", pattern="^(sql|redis|memory)$",
        description="Where per-client API rate counters live: the SQL store, Redis, or in process.")
    api_redis_url: str | None = Field(default=None, description="Redis URL when the backend is redis.")
    api_ws_heartbeat_seconds: float = Field(default=15.0, gt=0, description="WebSocket heartbeat period.")
    api_live_poll_seconds: float = Field(default=0.2, gt=0, description="Event-log poll period (live).")
    api_embed_batch_size: int = Field(default=32, gt=0, description="Max requests per embeddings batch.")
    api_embed_batch_wait_s: float = Field(default=0.005, ge=0, description="Batch fill wait (seconds).")
    api_snapshot_fresh_seconds: float = Field(
        default=0.5, ge=0,
        description="Fleet reports and profitability younger than this are served from the "
        "replica's snapshot without asking the actors.")
    api_snapshot_max_age_seconds: float = Field(
        default=5.0, ge=0,
        description="Up to this age a snapshot is served while it reloads in the background; "
        "older ones are reloaded before answering (0: always ask the actors).")
    api_max_json_bytes: int = Field(
        default=1 << 20, gt=0, description="Largest JSON request body (413 above).")
    api_max_json_depth: int = Field(
        default=64, gt=0, le=1000, description="Deepest nesting of a JSON request body (400 above).")
    api_max_ws_message_bytes: int = Field(
        default=64 << 10, gt=0, description="Largest WebSocket message a client may send.")
    api_trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For is believed; none by "
        "default, so a client cannot pick the address its limits are counted under.")
    api_rate_max_lease: int = Field(
        default=256, ge=1,
        description="Most rate-limit hits a replica leases from the shared counter at once "
        "(and at most a twentieth of the limit).")

    # --- notary (issue 5) ---
    notary_redis_url: str | None = Field(
        default=None,
        description="Redis for nonces and rate counters (production); None keeps them in SQL.",
    )
    notary_miner_limit: int = Field(default=10, gt=0, description="Claims per miner per window.")
    notary_miner_window_seconds: int = Field(default=3600, gt=0)
    notary_client_limit: int = Field(
        default=120, gt=0, description="Requests per client address per window (flood guard)."
    )
    notary_client_window_seconds: int = Field(default=60, gt=0)
    notary_nonce_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    notary_max_artifact_bytes: int = Field(default=16 << 20, gt=0, description="Upload cap (413).")
    notary_max_extracted_bytes: int = Field(default=64 << 20, gt=0)
    notary_max_artifact_files: int = Field(default=16, gt=0)
    notary_max_payload_bytes: int = Field(default=4096, gt=0)
    notary_score_tolerance: float = Field(default=0.001, ge=0)
    notary_sandbox_mode: str = Field(default="wasm", description="wasm (wasmtime) or docker.")
    notary_sandbox_fuel: int = Field(default=200_000_000_000, gt=0)
    notary_sandbox_memory_bytes: int = Field(default=1 << 30, gt=0)
    notary_sandbox_max_timeout_seconds: float = Field(default=600.0, gt=0)
    notary_sandbox_max_stdout_bytes: int = Field(default=64 << 10, gt=0)
    notary_sandbox_workers: int = Field(default=2, gt=0, description="Sandbox actors (or threads).")
    notary_sandbox_queue: int = Field(
        default=8, ge=0, description="Claims that may wait for a sandbox before 503."
    )
    notary_slash_base_bps: int = Field(
        default=500, ge=0, le=10_000, description="First slash, in basis points of the stake."
    )
    notary_task_cache_seconds: float = Field(default=5.0, ge=0)

    # --- marketplace and chain (issue 6) ---
    chain_rpc_url: str | None = Field(
        default=None, description="EVM JSON-RPC URL (anvil, geth); None: in-process py-evm chain."
    )
    chain_deployment: Path | None = Field(
        default=None, description="JSON file of deployed contract addresses (hcp.chain.Deployment)."
    )
    chain_operator_key: str | None = Field(
        default=None, description="Hex key of the operator/oracle; None: the node's first unlocked account."
    )
    chain_wallet_seed: str | None = Field(
        default=None, description="Seed of custodial account keys; None: random, kept in HCP_HOME/chain.seed."
    )
    chain_confirmations: int = Field(default=0, ge=0, description="Blocks behind head the indexer trusts.")
    chain_reorg_window: int = Field(default=64, gt=0, description="Recent block hashes kept for re-orgs.")
    chain_poll_seconds: float = Field(default=1.0, gt=0, description="Indexer polling interval.")
    chain_receipt_timeout_seconds: float = Field(default=120.0, gt=0, description="Receipt wait limit.")
    marketplace_escrow_backend: str = Field(
        default="sql", description="Escrow ledger of the marketplace: 'sql' (embedded) or 'chain'."
    )
    marketplace_platform_account: str = Field(default="platform", description="Account paid the 2% fee.")
    marketplace_oracles: list[str] = Field(
        default_factory=list, description="Token subjects (besides admins) allowed to resolve disputes."
    )
    marketplace_login_ttl_seconds: int = Field(default=300, gt=0, description="Wallet challenge lifetime.")
    marketplace_login_domain: str = Field(default="hcp.local", description="EIP-4361 domain of challenges.")
    marketplace_chain_id: int = Field(default=1337, gt=0, description="Chain id named in wallet challenges.")
    marketplace_max_job_seconds: int = Field(default=30 * 24 * 3600, gt=0, description="Longest job.")
    marketplace_response_max_seconds: int = Field(
        default=3600, gt=0, description="Accept latency that scores 0 on the reputation's response term."
    )
    marketplace_dispute_penalty: int = Field(
        default=100, ge=0, le=1000, description="Reputation points taken for a provider-fault dispute."
    )

    # --- container images by CID (issue 12): HCP_IMAGES__CAP_BYTES, ... ---
    images: ImagesSettings = Field(default_factory=ImagesSettings)
    # --- operations: Prometheus stack, circuit breakers, JSON logs (issue 15) ---
    ops: OpsSettings = Field(default_factory=OpsSettings)
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
