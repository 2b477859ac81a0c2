"""Relational store: SQLAlchemy 2 models, Alembic migrations and the engine; each area owns its
repository (the fleet's is ``hcp.fleet.repository``)."""

from hcp.store.db import connect, engine_for, migrate

__all__ = ["connect", "engine_for", "migrate"]
