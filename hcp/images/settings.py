"""Settings of the image store (``HCP_IMAGES__*``), one section of ``hcp.config.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ImagesSettings(BaseModel):
    backend: str = Field(
        default="embedded", pattern="^(embedded|kubo)$",
        description="Block store: 'embedded' (blocks under HCP_HOME + SQL index) or 'kubo' (a "
        "Kubo / IPFS Cluster node over its HTTP RPC).")
    store_name: str = Field(
        default="default", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Folder of this node's blocks: HCP_HOME/images/<store_name>/blocks.")
    cap_bytes: int = Field(
        default=50 << 30, gt=0,
        description="Hard storage cap of the block store; unpinned, unleased blocks are "
        "evicted least recently used first, then adds fail with 507 storage_full.")
    upload_max_bytes: int = Field(
        default=20 << 30, gt=0, description="Largest image upload accepted (413 above).")
    kubo_url: str = Field(default="http://127.0.0.1:5001", description="Kubo RPC base URL.")
    kubo_timeout_seconds: float = Field(default=120.0, gt=0)
    peers: list[str] = Field(
        default_factory=list,
        description="Gateways (base URLs) this node fetches missing blocks from, in parallel.")
    fetch_timeout_seconds: float = Field(default=30.0, gt=0, description="Per-block peer timeout.")
    fetch_parallelism: int = Field(default=8, gt=0, le=64, description="Blocks in flight at once.")
    cache_interval_seconds: float = Field(default=300.0, gt=0, description="Caching policy period.")
    cache_top_n: int = Field(default=10, ge=0, description="Most-used images kept pinned.")
    cache_unused_days: int = Field(default=30, gt=0, description="Unpin images unused this long.")
    lease_ttl_seconds: int = Field(
        default=7 * 24 * 3600, gt=0,
        description="A job lease's safety expiry, should its job never release it.")
    rpc_public: bool = Field(
        default=False,
        description="Serve the Kubo RPC subset without a token (Kubo's own default on "
        "localhost); otherwise it needs a provider or admin token.")
