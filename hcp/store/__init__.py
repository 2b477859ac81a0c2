"""Relational store: SQLAlchemy 2 models, Alembic migrations, repositories."""

from hcp.store.db import connect, engine_for, migrate
from hcp.store.repository import DeviceStateRecord, EventRecord, FleetRepository

__all__ = ["connect", "engine_for", "migrate", "FleetRepository", "DeviceStateRecord",
           "EventRecord"]
