"""Tables of the user subgraph, unqualified: a territory session maps them to its schema.

`users` and `user_identities` are owned by the auth subgraph; the projections here name only
the columns this subgraph reads (existence, search and the home territory of a user id).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from core.db.territories import GLOBAL_SCHEMA

metadata = MetaData()

_EMPTY_LIST = text("'{}'::text[]")

user_profiles = Table(
    "user_profiles",
    metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("about", Text),
    Column("interests", ARRAY(Text), nullable=False, server_default=_EMPTY_LIST),
    Column("skills", ARRAY(Text), nullable=False, server_default=_EMPTY_LIST),
    Column("languages", ARRAY(Text), nullable=False, server_default=_EMPTY_LIST),
    Column("location", Text),
    Column("website_url", Text),
    Column("github_url", Text),
    Column("linkedin_url", Text),
    Column("twitter_handle", Text),
    Column("theme", Text, nullable=False, server_default=text("'auto'")),
    Column("visibility", Text, nullable=False, server_default=text("'public'")),
    Column("show_email", Boolean, nullable=False, server_default=text("false")),
    Column("show_real_name", Boolean, nullable=False, server_default=text("true")),
    Column("allow_messages_from", Text, nullable=False, server_default=text("'everyone'")),
    # Stored avatar: {"version", "format", "sizes": {size: {"width", "height", "bytes"}}, ...}.
    Column("avatar", JSONB),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# A follow edge is stored in the home territory of each of its two users: once when both live
# in the same territory, twice (one row per territory) across territories. `remote_territory`
# names the other user's territory on a cross-territory row and is NULL otherwise.
user_connections = Table(
    "user_connections",
    metadata,
    Column("follower_id", UUID(as_uuid=True), nullable=False),
    Column("following_id", UUID(as_uuid=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("remote_territory", Text),
    PrimaryKeyConstraint("follower_id", "following_id"),
)

# Blocks follow the same placement; the reason is the blocker's own note and is stored only on
# the blocker's side.
user_blocks = Table(
    "user_blocks",
    metadata,
    Column("blocker_id", UUID(as_uuid=True), nullable=False),
    Column("blocked_id", UUID(as_uuid=True), nullable=False),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("remote_territory", Text),
    PrimaryKeyConstraint("blocker_id", "blocked_id"),
)

users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("username", Text, nullable=False),
    Column("display_name", Text),
    Column("is_active", Boolean, nullable=False),
)

user_identities = Table(
    "user_identities",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("territory_code", Text, nullable=False),
    schema=GLOBAL_SCHEMA,
)
