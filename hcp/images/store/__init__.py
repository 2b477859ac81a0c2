"""Block stores behind one interface: the embedded store (blocks on disk + SQL index) and the
Kubo backend (a Kubo / IPFS Cluster node over its HTTP RPC)."""

from hcp.images.store.base import AddResult, BlockStore, GcReport, PinInfo, RepoStat

__all__ = ["AddResult", "BlockStore", "GcReport", "PinInfo", "RepoStat", "open_store"]


def open_store(settings, engine=None):  # type: ignore[no-untyped-def]
    """The store ``settings.images.backend`` names."""
    if settings.images.backend == "kubo":
        from hcp.images.store.kubo import KuboStore

        return KuboStore.from_settings(settings, engine)
    from hcp.images.store.embedded import EmbeddedStore

    return EmbeddedStore.from_settings(settings, engine)
