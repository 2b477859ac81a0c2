"""Which escrow ledger the marketplace uses: the SQL double-entry ledger (embedded default) or
the on-chain PaymentEscrow (``HCP_MARKETPLACE_ESCROW_BACKEND=chain``)."""

from __future__ import annotations

import importlib

from sqlalchemy import Engine

from hcp.config import Settings
from hcp.errors import ConfigError
from hcp.marketplace.escrow_backend import EscrowBackend
from hcp.marketplace.sql_ledger import SqlEscrowBackend


def build_escrow_backend(settings: Settings, engine: Engine | None = None) -> EscrowBackend:
    kind = settings.marketplace.escrow_backend.lower()
    if kind == "sql":
        if engine is None:
            from hcp.store.db import engine_for

            engine = engine_for(settings.resolved_database_url)
        return SqlEscrowBackend(engine, platform_account=settings.marketplace.platform_account)
    if kind == "chain":
        try:
            stack = importlib.import_module("hcp.marketplace.chain.stack")
        except ImportError as exc:
            raise ConfigError(f"the chain escrow backend is not available: {exc}") from exc
        backend: EscrowBackend = stack.open_chain(
            settings, platform_account=settings.marketplace.platform_account).escrow
        return backend
    raise ConfigError(f"unknown marketplace escrow backend {kind!r} (use 'sql' or 'chain')")
