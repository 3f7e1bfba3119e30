"""Enable TimescaleDB on the default pod where the server offers it (logged either way), before
any territory migration there turns its time series into hypertables (see `ot001`).

Revision ID: og001
Revises: g0005
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from core.db.timeseries import log, timescaledb_schema

revision: str = "og001"
down_revision: str | Sequence[str] | None = "g0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    extension = timescaledb_schema(op.get_bind())
    if extension is None:
        log.info("TimescaleDB not available on this database: time series use plain tables")
    else:
        log.info("TimescaleDB enabled (schema %s): time series become hypertables", extension)


def downgrade() -> None:
    # Territory hypertables depend on the extension; dropping it is an operator's decision.
    pass
