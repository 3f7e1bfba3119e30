"""What the migrated tables enforce: case-insensitive uniqueness, append-only audit, edge rules."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from core.config import Settings
from core.db import Database, Territory
from core.db.migrations import migrate_global
from core.db.provisioning import create_territory


@pytest.fixture(scope="module")
async def db(settings: Settings) -> AsyncIterator[Database]:
    await migrate_global(settings)
    database = Database(settings.database)
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
async def territory(settings: Settings, db: Database, run_id: str) -> Territory:
    return await create_territory(settings, db, code=f"tbl-{run_id}", name="T", type="country")


async def _add_user(db: Database, code: str, username: str, email: str | None = None) -> Any:
    async with db.territory_session(code) as session:
        return await session.scalar(
            text(
                "INSERT INTO users (username, email, password_hash)"
                " VALUES (:username, :email, 'x') RETURNING id"
            ),
            {"username": username, "email": email},
        )


def _name() -> str:
    return "u" + uuid.uuid4().hex[:12]


async def test_emails_are_unique_case_insensitively_when_present(
    db: Database, territory: Territory
) -> None:
    email = f"{_name()}@Example.org"
    await _add_user(db, territory.code, _name(), email)
    with pytest.raises(IntegrityError):
        await _add_user(db, territory.code, _name(), email.upper())
    # Any number of accounts may have no email.
    await _add_user(db, territory.code, _name())
    await _add_user(db, territory.code, _name())


async def test_usernames_are_unique_case_insensitively(db: Database, territory: Territory) -> None:
    name = _name()
    await _add_user(db, territory.code, name)
    with pytest.raises(IntegrityError):
        await _add_user(db, territory.code, name.upper())
    with pytest.raises(IntegrityError):
        await _add_user(db, territory.code, "no spaces or symbols!")


async def test_global_usernames_are_unique_case_insensitively(
    db: Database, territory: Territory
) -> None:
    name = _name()
    statement = text(
        "INSERT INTO user_identities (username, public_key_hash, territory_code, territory_user_id)"
        " VALUES (:username, :hash, :territory, gen_random_uuid())"
    )
    async with db.global_session() as session:
        await session.execute(
            statement, {"username": name, "hash": uuid.uuid4().hex * 2, "territory": territory.code}
        )
    with pytest.raises(IntegrityError):
        async with db.global_session() as session:
            await session.execute(
                statement,
                {
                    "username": name.upper(),
                    "hash": uuid.uuid4().hex * 2,
                    "territory": territory.code,
                },
            )
    async with db.global_session() as session:
        await session.execute(text("DELETE FROM user_identities WHERE username = :u"), {"u": name})


async def test_the_audit_log_is_append_only(db: Database, territory: Territory) -> None:
    async with db.territory_session(territory.code) as session:
        entry = await session.scalar(
            text(
                "INSERT INTO audit_log (territory_code, action) VALUES (:code, 'test') RETURNING id"
            ),
            {"code": territory.code},
        )
    for statement in (
        "UPDATE audit_log SET action = 'changed' WHERE id = :id",
        "DELETE FROM audit_log WHERE id = :id",
        "TRUNCATE audit_log",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.territory_session(territory.code) as session:
                await session.execute(text(statement), {"id": entry})
    async with db.territory_session(territory.code) as session:
        action = await session.scalar(
            text("SELECT action FROM audit_log WHERE id = :id"), {"id": entry}
        )
    assert action == "test"


async def test_nobody_follows_or_blocks_themselves(db: Database, territory: Territory) -> None:
    alice = await _add_user(db, territory.code, _name())
    for statement in (
        "INSERT INTO user_connections (follower_id, following_id) VALUES (:id, :id)",
        "INSERT INTO user_blocks (blocker_id, blocked_id) VALUES (:id, :id)",
    ):
        with pytest.raises(IntegrityError):
            async with db.territory_session(territory.code) as session:
                await session.execute(text(statement), {"id": alice})
    async with db.territory_session(territory.code) as session:
        await session.execute(text("DELETE FROM users WHERE id = :id"), {"id": alice})


async def test_invitation_rules_hold_in_the_table(db: Database, territory: Territory) -> None:
    insert = text(
        "INSERT INTO invitation_tokens"
        " (token, token_hash, token_type, invited_email, max_uses, expires_at)"
        " VALUES (:token, md5(:token), :type, :email, :max_uses, now() + interval '1 day')"
    )
    refused = [
        {"type": "single_use", "email": None, "max_uses": 1},
        {"type": "single_use", "email": "a@example.org", "max_uses": 2},
        {"type": "group", "email": "a@example.org", "max_uses": 5},
        {"type": "group", "email": None, "max_uses": 1001},
        {"type": "other", "email": None, "max_uses": 5},
    ]
    for values in refused:
        with pytest.raises(IntegrityError):
            async with db.territory_session(territory.code) as session:
                await session.execute(insert, {"token": "inv_" + uuid.uuid4().hex, **values})
    token = "inv_" + uuid.uuid4().hex
    async with db.territory_session(territory.code) as session:
        await session.execute(
            insert, {"token": token, "type": "group", "email": None, "max_uses": 2}
        )
        await session.execute(text("DELETE FROM invitation_tokens WHERE token = :t"), {"t": token})
