"""The one Settings object. Every knob is an ``HCP_`` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_FLEET_SPEC = Path(__file__).parent / "data" / "fleet.local.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HCP_", env_file=None, extra="ignore")

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
