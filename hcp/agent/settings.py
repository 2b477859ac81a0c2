"""Settings of the provider agent (``HCP_AGENT__*``), one section of ``hcp.config.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class SlotSetting(BaseModel):
    """One rentable GPU of this node: the marketplace offer that sells it and the device."""

    offer_id: str = Field(min_length=1, max_length=64)
    gpu_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    device_index: int | None = Field(
        default=None, ge=0, description="CUDA device index; None: a CPU-backed simulated GPU.")
    gpu_model: str | None = Field(default=None, max_length=64)


class AgentSettings(BaseModel):
    agent_id: str | None = Field(
        default=None, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
        description="Names this agent on its containers' labels; default: the host name.")
    provider: str = Field(
        default="operator", min_length=1, max_length=128,
        description="The provider subject whose jobs the in-process agent runs.")
    api_url: str | None = Field(default=None, description="Platform API (the `hcp agent` daemon).")
    token: SecretStr | None = Field(default=None, description="Provider token of the daemon (never shown).")
    slots: list[SlotSetting] = Field(default_factory=list, description="GPUs this node rents out.")
    poll_seconds: float = Field(default=1.0, gt=0, description="Seconds between agent steps.")
    metrics_interval_seconds: float = Field(default=5.0, gt=0, description="Container sample period.")
    pids_limit: int = Field(default=1024, gt=0, description="Processes a container may run.")
    tmpfs_path: str = Field(default="/tmp", pattern=r"^/[A-Za-z0-9_./-]*$",
                            description="Writable tmpfs over the read-only root.")
    stop_grace_seconds: float = Field(default=5.0, ge=0, description="SIGTERM to SIGKILL on a stop.")
    start_timeout_seconds: float = Field(default=30.0, gt=0, description="Wait for a container to run.")
    drain_timeout_seconds: float = Field(default=10.0, gt=0,
                                         description="Wait for the last log lines at exit.")
    log_batch_lines: int = Field(default=1000, gt=0, le=10_000, description="Lines per store write.")
    log_flush_seconds: float = Field(default=0.0, ge=0,
                                     description="Least time between log writes (the daemon: 0.25).")
    log_max_line_bytes: int = Field(default=16 << 10, gt=0, le=64 << 10,
                                    description="A longer log line is cut (Docker splits at 16 KiB).")
    resume_margin_seconds: int = Field(default=5, ge=1, le=600,
                                       description="Log capture re-reads this far back after a restart.")
    egress_network: str = Field(default="hcp-egress", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                                description="Bridge network (no inter-container traffic) for egress jobs.")
    gpu: str = Field(default="auto", pattern="^(auto|nvidia|simulated)$",
                     description="GPU access: NVIDIA device requests when the runtime exists (auto), "
                     "always (nvidia), or a CPU-backed simulated GPU (simulated).")
    launch_workers: int = Field(default=4, gt=0, le=64, description="Concurrent pulls and starts.")
    ws_poll_seconds: float = Field(default=0.2, gt=0,
                                   description="How often a log or metrics socket reads the store.")
    ws_max_items: int = Field(default=500, gt=0, le=5000, description="Lines or samples per message.")
    ws_max_bytes: int = Field(default=256 << 10, ge=4096, le=4 << 20,
                              description="Largest WebSocket message sent (JSON bytes).")
    store_name: str = Field(default="agent", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                            description="The agent's own image store folder (HCP_HOME/images/<name>).")
    workloads: bool = Field(default=False, description="The operator's agent also runs platform "
                            "workloads that carry a container, on the fleet's GPUs of its node.")
    workload_vcpu: int = Field(default=2, gt=0, le=512, description="CPUs of a workload container.")
    workload_memory_gb: int = Field(default=4, gt=0, le=4096,
                                    description="Memory of a workload container.")
    workload_storage_gb: int = Field(default=10, gt=0, le=100_000,
                                     description="Disk of a workload container.")
