"""SQLAlchemy mappings of the tables the user subgraph reads and writes.

Territory tables carry no schema: the territory session maps them to `territory_<code>`.
`users` and `user_identities` are owned by the auth subgraph; the mappings here name only the
columns this subgraph reads (existence, search and the home territory of a user id).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.db.territories import GLOBAL_SCHEMA

_EMPTY_LIST = text("'{}'::text[]")


class Base(DeclarativeBase):
    """Mappings of the user subgraph (tables are created by the alembic trees)."""


class UserProfile(Base):
    __tablename__ = "user_profiles"

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    about: Mapped[str | None] = mapped_column(Text)
    interests: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=_EMPTY_LIST)
    skills: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=_EMPTY_LIST)
    languages: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=_EMPTY_LIST)
    location: Mapped[str | None] = mapped_column(Text)
    website_url: Mapped[str | None] = mapped_column(Text)
    github_url: Mapped[str | None] = mapped_column(Text)
    linkedin_url: Mapped[str | None] = mapped_column(Text)
    twitter_handle: Mapped[str | None] = mapped_column(Text)
    theme: Mapped[str] = mapped_column(Text, server_default=text("'auto'"))
    visibility: Mapped[str] = mapped_column(Text, server_default=text("'public'"))
    show_email: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    show_real_name: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    allow_messages_from: Mapped[str] = mapped_column(Text, server_default=text("'everyone'"))
    # Stored avatar: {"version", "format", "sizes": {size: {"width", "height", "bytes"}}, ...}.
    avatar: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The column is `metadata`, a name declarative mappings keep for themselves.
    extra: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UserConnection(Base):
    """A follow edge, stored in the home territory of each of its two users: once when both live
    in the same territory, twice (one row per territory) across territories.
    `remote_territory` names the other user's territory on a cross-territory row, else NULL."""

    __tablename__ = "user_connections"

    follower_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    following_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    remote_territory: Mapped[str | None] = mapped_column(Text)


class UserBlock(Base):
    """A block, placed like a follow; the reason is the blocker's own note and is stored only
    on the blocker's side."""

    __tablename__ = "user_blocks"

    blocker_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    blocked_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    remote_territory: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """The auth subgraph's accounts, as far as this subgraph reads them."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    username: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean)


class UserIdentity(Base):
    """Where each user lives (the auth subgraph's global directory)."""

    __tablename__ = "user_identities"
    __table_args__ = {"schema": GLOBAL_SCHEMA}  # noqa: RUF012 - SQLAlchemy's declaration

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    territory_code: Mapped[str] = mapped_column(Text)
