"""Case- and accent-insensitive user search by username and display name, served by an index.

`user_search_key(text)` folds case and common accents with built-ins only (IMMUTABLE, so it can
be indexed). With pg_trgm available the key gets a trigram GIN index, which serves substring
matches; without it (the embedded development PostgreSQL ships no contrib modules) a
`text_pattern_ops` B-tree still serves prefix matches.

Revision ID: u0002
Revises: u0001
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from core.db.migration_env import quoted_target_schema

revision: str = "u0002"
down_revision: str | Sequence[str] | None = "u0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Letter by letter: `translate` maps each character of the first string to the one at the same
# position of the second. Letters without a Unicode decomposition are mapped by hand.
_ACCENTED = "àáâãäåāăąçćčďđèéêëēėęěìíîïīįłñńňòóôõöøōőŕřśšşťţùúûüūůűųýÿžźż"
_UNDECOMPOSABLE = {"đ": "d", "ł": "l", "ø": "o"}
_PLAIN = "".join(
    _UNDECOMPOSABLE.get(letter) or unicodedata.normalize("NFKD", letter)[0] for letter in _ACCENTED
)

SEARCH_EXPRESSION = "user_search_key(username || ' ' || coalesce(display_name, ''))"


def upgrade() -> None:
    schema = quoted_target_schema()
    op.execute(
        sa.text(
            f"CREATE OR REPLACE FUNCTION {schema}.user_search_key(value text) RETURNS text "
            "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT "
            f"AS $$ SELECT pg_catalog.translate(pg_catalog.lower(value), "
            f"'{_ACCENTED}', '{_PLAIN}') $$"
        )
    )
    trigram_ops = _trigram_operator_class()
    if trigram_ops is not None:
        op.execute(
            sa.text(
                f"CREATE INDEX ix_users_search_trgm ON {schema}.users "
                f"USING gin ({schema}.{SEARCH_EXPRESSION} {trigram_ops})"
            )
        )
    else:
        op.execute(
            sa.text(
                f"CREATE INDEX ix_users_search_prefix ON {schema}.users "
                f"({schema}.{SEARCH_EXPRESSION} text_pattern_ops)"
            )
        )


def downgrade() -> None:
    schema = quoted_target_schema()
    op.execute(sa.text(f"DROP INDEX IF EXISTS {schema}.ix_users_search_trgm"))
    op.execute(sa.text(f"DROP INDEX IF EXISTS {schema}.ix_users_search_prefix"))
    op.execute(sa.text(f"DROP FUNCTION IF EXISTS {schema}.user_search_key(text)"))


def _trigram_operator_class() -> str | None:
    """`<schema>.gin_trgm_ops` once pg_trgm is installed (in `public`), None if unavailable.

    Printing SQL (`alembic ... --sql`) has no server to ask: the plain path is printed.
    """
    if context.is_offline_mode():
        return None
    bind = op.get_bind()
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).first()
    if available is None:
        return None
    # Concurrent migrations of several territories may race to install it: serialise them.
    bind.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('unityplan.extension.pg_trgm'))"))
    installed_in = _extension_schema(bind)
    if installed_in is None:
        try:
            # In a savepoint: a role without the right to install it falls back, not fails.
            with bind.begin_nested():
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public"))
        except sa.exc.DBAPIError:
            return None
        installed_in = _extension_schema(bind)
    if installed_in is None:
        return None
    return f"{bind.dialect.identifier_preparer.quote_schema(installed_in)}.gin_trgm_ops"


def _extension_schema(bind: sa.Connection) -> str | None:
    schema: str | None = bind.execute(
        sa.text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
    ).scalar_one_or_none()
    return schema
