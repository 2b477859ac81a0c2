"""A read-only session of the SQL ledger whose failures are typed (shared by its modules)."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hcp.errors import StoreError


class ReadTx:
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def __enter__(self) -> Session:
        self._s = self._factory()
        return self._s

    def __exit__(self, et, ev, tb) -> bool:  # type: ignore[no-untyped-def]
        self._s.close()
        if isinstance(ev, SQLAlchemyError):
            raise StoreError(f"ledger read failed: {ev}") from ev
        return False
