"""Alembic environment of the `territory` tree; the shared logic is in core.db.migration_env."""

from core.config import Settings, get_settings
from core.db.migration_env import run
from unityplan.devstack.discovery import with_running_stack


def _settings() -> Settings:
    # Beside `make dev`, the database of the running development stack.
    return with_running_stack(get_settings())[0]


run(command_line_settings=_settings)
