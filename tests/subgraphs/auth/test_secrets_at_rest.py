"""What the database holds of the secrets the auth subgraph hands out or keeps: read the rows,
find nothing usable. TOTP secrets are sealed with a key from the settings and re-sealed when
the keys rotate; tokens and recovery codes are only hashes."""

from __future__ import annotations

import re
import uuid

import pyotp
import pytest
from sqlalchemy import text

from core.db.territories import GLOBAL_SCHEMA, schema_for
from core.security.secret_box import SealedValueError, SecretBox
from subgraphs.auth.models import MfaSecret
from subgraphs.auth.repository import TerritoryRepository
from subgraphs.auth.service.mfa import totp_secret
from subgraphs.auth.service.secrets_at_rest import seal_territory_secrets
from tests.subgraphs.auth.conftest import LOGIN, AuthApp, Territories, register_member

KEY_A = "data-key-a-" + "a" * 40
KEY_B = "data-key-b-" + "b" * 40


async def _every_text_value(auth_app: AuthApp, territory: str) -> str:
    """Every text-like value of every table of the territory's schema and of `global`."""
    schemas = [schema_for(territory), GLOBAL_SCHEMA]
    found: list[str] = []
    async with auth_app.runtime.db.territory_session(territory) as session:
        for schema in schemas:
            tables = (
                await session.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}
                )
            ).scalars()
            for table in list(tables):
                # Names from the catalog, not from input.
                whole_rows = f'SELECT t::text FROM "{schema}"."{table}" t'  # noqa: S608
                rows = await session.execute(text(whole_rows))
                found.extend(str(row) for row in rows.scalars())
    return "\n".join(found)


async def test_the_rows_hold_no_usable_secret(auth_app: AuthApp, territories: Territories) -> None:
    code = territories.home.code
    email = f"rest_{uuid.uuid4().hex[:8]}@example.org"
    member = await register_member(auth_app, code, email=email)
    client = auth_app.client(member.access_token)
    enrollment = (await client.data("mutation { enrollTotp { secret } }"))["enrollTotp"]
    totp = pyotp.TOTP(enrollment["secret"])
    codes = (
        await client.data("mutation C($c: String!) { confirmTotp(code: $c) }", {"c": totp.now()})
    )["confirmTotp"]
    signed_in = await auth_app.client().data(
        LOGIN,
        {
            "input": {
                "username": member.username,
                "password": member.password,
                "totpCode": codes[0],
            }
        },
    )
    await auth_app.client().data(
        "mutation R($u: String!) { requestPasswordReset(username: $u) }", {"u": member.username}
    )
    await client.data("mutation { requestEmailVerification }")
    await auth_app.runtime.mail.drain()
    mails = auth_app.runtime.mail.mailer.mails_to(email)  # type: ignore[attr-defined]
    mailed = [
        token
        for mail in mails
        for token in re.findall(
            rf"^{re.escape(code)}\.[A-Za-z0-9_-]{{40,}}$", mail.get_content(), re.M
        )
    ]
    assert len(mailed) == 2  # the reset and the verification token
    invitation = (
        await auth_app.client(member.access_token).data(
            "mutation { createInvitation(input: {type: GROUP, maxUses: 5}) { token } }"
        )
    )["createInvitation"]["token"]
    handed_out = [
        enrollment["secret"],
        *codes,
        *(c.replace("-", "") for c in codes),
        member.refresh_token,
        signed_in["login"]["refreshToken"],
        *mailed,
        invitation,
    ]
    stored = await _every_text_value(auth_app, code)
    assert member.username in stored  # the dump does read the account rows
    for value in handed_out:
        # Neither in clear nor in any other column.
        assert value not in stored
        assert value.split(".")[-1] not in stored
    # The TOTP secret row: sealed, and useless without the key.
    async with auth_app.runtime.db.territory_session(code) as session:
        row = await TerritoryRepository(session).mfa_secret(uuid.UUID(member.id))
        assert row is not None
        assert row.secret.startswith("v1.")
        with pytest.raises(SealedValueError):
            SecretBox([KEY_A]).open(row.secret, f"mfa_secrets.secret:{member.id}")
        # Copied into another user's row it does not open either.
        with pytest.raises(SealedValueError):
            auth_app.runtime.secret_box.open(row.secret, f"mfa_secrets.secret:{uuid.uuid4()}")
        assert totp_secret(auth_app.runtime.secret_box, row) == enrollment["secret"]


async def test_rotation_and_secrets_from_before_sealing(
    auth_app: AuthApp, territories: Territories
) -> None:
    code = territories.remote.code
    members = [await register_member(auth_app, code) for _ in range(2)]
    plain = [pyotp.random_base32(32) for _ in members]
    old, during, new = SecretBox([KEY_A]), SecretBox([KEY_B, KEY_A]), SecretBox([KEY_B])
    async with auth_app.runtime.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        # One sealed under the old key, one as written before secrets were sealed.
        first, second = (uuid.UUID(m.id) for m in members)
        repo.add(MfaSecret(user_id=first, secret=old.seal(plain[0], f"mfa_secrets.secret:{first}")))
        repo.add(MfaSecret(user_id=second, secret=plain[1]))
        await repo.flush()
    async with auth_app.runtime.db.territory_session(code) as session:
        assert await seal_territory_secrets(during, TerritoryRepository(session)) >= 2
    async with auth_app.runtime.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        for user_id, secret in zip((first, second), plain, strict=True):
            row = await repo.mfa_secret(user_id)
            assert row is not None
            assert not during.needs_rotation(row.secret)
            assert secret not in row.secret
            # After the rotation the old key can go: the new one alone opens every row.
            assert new.open(row.secret, f"mfa_secrets.secret:{user_id}") == secret
        # Nothing left to do on a second pass.
        assert await seal_territory_secrets(during, repo) == 0
