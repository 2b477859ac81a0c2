"""Relational store: SQLAlchemy 2 models, Alembic migrations, repositories."""

from hcp.store.db import connect, migrate
from hcp.store.repository import DeviceStateRecord, EventRecord, FleetRepository

__all__ = ["connect", "migrate", "FleetRepository", "DeviceStateRecord", "EventRecord"]
