"""Alembic environment of the `territory` tree; the shared logic is in core.db.migration_env."""

from core.db.migration_env import run

run()
