"""Column types as the migrations wrote them, frozen: a migration imports these, never the
application's models, so an old migration's DDL cannot change when the code does.

Each is the DDL the application's type renders (``hcp.store.models.UtcDateTime``,
``hcp.marketplace.models.TokenAmount``); the conversions those types do on bind and result
live in the application and do not matter to DDL. Never edit these: add a new name instead.
"""

from __future__ import annotations

import sqlalchemy as sa

# hcp.store.models.UtcDateTime as of 0001-0007: timezone-aware timestamps.
UtcDateTime = sa.DateTime(timezone=True)

# hcp.marketplace.models.TokenAmount as of 0005/0006: a uint256, NUMERIC(78, 0) on PostgreSQL,
# zero-padded text of 78 characters elsewhere.
TokenAmount = sa.String(78).with_variant(sa.Numeric(78, 0, asdecimal=True), "postgresql")
