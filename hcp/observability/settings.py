"""Settings of the operations stack: ``HCP_OPS__...`` (e.g. ``HCP_OPS__PROMETHEUS_PORT=9091``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from hcp.resilience.settings import BreakerSettings

# The repository's ops/ folder: Prometheus, Alertmanager and Grafana files.
DEFAULT_OPS_DIR = Path(__file__).resolve().parents[2] / "ops"


def client_host(bind: str) -> str:
    return "127.0.0.1" if bind in ("0.0.0.0", "::", "") else bind


class OpsSettings(BaseModel):
    @property
    def prometheus_url(self) -> str:
        """Where a client reaches Prometheus (a wildcard bind is reached on loopback)."""
        return f"http://{client_host(self.prometheus_host)}:{self.prometheus_port}"

    prometheus_host: str = Field(default="127.0.0.1", description="Address Prometheus binds.")
    prometheus_port: int = Field(default=9090, ge=1, le=65535)
    alertmanager_host: str = Field(default="127.0.0.1", description="Address Alertmanager binds.")
    alertmanager_port: int = Field(default=9093, ge=1, le=65535)
    retention: str = Field(default="180d", pattern=r"^\d+[smhdwy]$",
                           description="How long Prometheus keeps samples (the metrics history).")
    scrape_interval: str = Field(default="15s", pattern=r"^\d+(ms|s|m)$")
    evaluation_interval: str = Field(default="15s", pattern=r"^\d+(ms|s|m)$")
    ops_dir: Path = Field(default=DEFAULT_OPS_DIR, description="Folder of the committed configs.")
    state_dir: Path | None = Field(
        default=None, description="Data, rendered configs, pids and logs; None: HCP_HOME/ops.")
    history_source: Literal["auto", "prometheus", "store"] = Field(
        default="auto", description="Where GET /api/v1/metrics/... reads: Prometheus when it "
        "answers, else the store's own rows (auto); only one of them (prometheus, store).")
    log_json: bool = Field(default=False, description="JSON-lines logs with correlation ids.")
    breakers: BreakerSettings = Field(default_factory=BreakerSettings)
