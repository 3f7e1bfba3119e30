"""Account security: brute-force limits, password policy, TOTP with replay protection and
recovery codes, password reset and email verification through the dev mail sink, tampered JWTs."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from email.message import EmailMessage

import httpx
import pyotp
import pytest

from core.config import Settings
from core.security import KeyRing
from subgraphs.auth.app import create_app
from subgraphs.auth.mailer import DevMailSink
from tests.signing import SignedAsRouter
from tests.subgraphs.auth.conftest import (
    LOGIN,
    REGISTER,
    AuthApp,
    Territories,
    group_invitation,
    register_member,
    running,
    unique_username,
)

ME = "{ me { id mfaEnabled isVerified } }"


def _login_vars(username: str, password: str, totp: str | None = None) -> dict[str, object]:
    return {"input": {"username": username, "password": password, "totpCode": totp}}


# ---------------------------------------------------------------- brute force


async def test_account_locks_after_ten_failures_even_for_the_right_password(
    auth_app: AuthApp, territories: Territories
) -> None:
    member = await register_member(auth_app, territories.home.code)
    for _ in range(10):
        # A fresh client IP each time: this is the per-account limit at work.
        error = await auth_app.client().error(LOGIN, _login_vars(member.username, "wrong guess!"))
        assert error["extensions"]["code"] == "INVALID_CREDENTIALS"
    error = await auth_app.client().error(LOGIN, _login_vars(member.username, member.password))
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 1 <= error["extensions"]["retryAfter"] <= 900
    # Case does not open a second account bucket.
    error = await auth_app.client().error(
        LOGIN, _login_vars(member.username.upper(), member.password)
    )
    assert error["extensions"]["code"] == "RATE_LIMITED"


async def test_a_success_resets_the_failure_count(
    auth_app: AuthApp, territories: Territories
) -> None:
    member = await register_member(auth_app, territories.home.code)
    for _ in range(2):
        for _ in range(9):
            await auth_app.client().error(LOGIN, _login_vars(member.username, "wrong guess!"))
        await auth_app.client().data(LOGIN, _login_vars(member.username, member.password))


async def test_aliased_attempts_in_one_request_count_each(
    auth_app: AuthApp, territories: Territories
) -> None:
    member = await register_member(auth_app, territories.home.code)
    client = auth_app.client()
    # Mutations run one after another and `login` is non-null: the first failure ends the
    # request, so aliases cannot batch guesses. Each one that runs is counted.
    aliases = "\n".join(
        f'a{i}: login(input: {{username: "{member.username}", password: "guess-{i}-xx"}}) '
        "{ accessToken }"
        for i in range(12)
    )
    body = await client.execute(f"mutation {{ {aliases} }}")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_CREDENTIALS"]
    for _ in range(9):
        await client.error(LOGIN, _login_vars(member.username, "wrong guess!"))
    error = await client.error(LOGIN, _login_vars(member.username, member.password))
    assert error["extensions"]["code"] == "RATE_LIMITED"
    # Queries run side by side: 31 aliased invitation checks from one client, 30 allowed.
    # A territory nobody registered, looked up once first so that the registry remembers the
    # miss: no check is left waiting on the database when the refused one ends the request.
    warm_up = '{ validateInvitation(token: "inv_0", territoryCode: "nowhere-land") { valid } }'
    await auth_app.client().data(warm_up)
    checks = "\n".join(
        f'v{i}: validateInvitation(token: "inv_{i:032x}", territoryCode: "nowhere-land") '
        "{ valid }"
        for i in range(31)
    )
    body = await auth_app.client().execute(f"{{ {checks} }}")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["RATE_LIMITED"]


async def test_lock_out_per_client_ip_and_its_expiry(
    auth_settings: Settings, territories: Territories
) -> None:
    # The window must hold the three failed logins even on a loaded machine (each one hashes).
    settings = auth_settings.replace(
        LOGIN_FAILURES_PER_IP=3, LOGIN_FAILURES_PER_ACCOUNT=50, LOGIN_FAILURE_WINDOW_SECONDS=4
    )
    app = create_app(settings, run_outbox_relay=False)
    async with (
        running(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://a",
            auth=SignedAsRouter(settings),
        ) as http,
    ):
        auth_app = AuthApp(http, app.state.auth_runtime, settings)
        member = await register_member(auth_app, territories.home.code)
        attacker = auth_app.client()
        for _ in range(3):
            error = await attacker.error(LOGIN, _login_vars(unique_username(), "wrong guess!"))
            assert error["extensions"]["code"] == "INVALID_CREDENTIALS"
        error = await attacker.error(LOGIN, _login_vars(member.username, member.password))
        assert error["extensions"]["code"] == "RATE_LIMITED"
        # Another address is not affected.
        await auth_app.client().data(LOGIN, _login_vars(member.username, member.password))
        # The lock-out ends by itself (first lock-out: one window).
        deadline = time.monotonic() + 20
        while True:
            body = await attacker.execute(LOGIN, _login_vars(member.username, member.password))
            if not body.get("errors"):
                break
            assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
            assert time.monotonic() < deadline, "the lock-out did not end"
            await asyncio.sleep(0.2)


# ---------------------------------------------------------------- password policy


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short1!", "too short"),
        ("x" * 129, "too long"),
        ("password123", "common"),
        ("Iloveyou", "common, any case"),
        ("SAME_AS_USERNAME", "the username"),
    ],
)
async def test_password_policy_on_registration(
    auth_app: AuthApp, territories: Territories, password: str, why: str
) -> None:
    code = territories.home.code
    token = await group_invitation(auth_app, code, uses=2)
    username = "same_as_username" if why == "the username" else unique_username()
    error = await auth_app.client().error(
        REGISTER,
        {
            "input": {
                "territoryCode": code,
                "invitationToken": token,
                "username": username,
                "password": password,
            }
        },
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "password"}, why


async def test_long_passphrases_without_composition_rules_are_fine(
    auth_app: AuthApp, territories: Territories
) -> None:
    member = await register_member(auth_app, territories.home.code, password="é" * 128)
    await auth_app.client().data(LOGIN, _login_vars(member.username, "é" * 128))


# ---------------------------------------------------------------- TOTP


async def test_totp_enrollment_login_replay_and_recovery_codes(
    auth_app: AuthApp, territories: Territories
) -> None:
    member = await register_member(auth_app, territories.remote.code)
    client = auth_app.client(member.access_token)
    enrollment = (await client.data("mutation { enrollTotp { secret otpauthUri } }"))["enrollTotp"]
    assert enrollment["otpauthUri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrollment["secret"])
    confirm = "mutation C($c: String!) { confirmTotp(code: $c) }"
    error = await client.error(confirm, {"c": "000000" if totp.now() != "000000" else "111111"})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    confirmed_code = totp.now()
    codes = (await client.data(confirm, {"c": confirmed_code}))["confirmTotp"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert (await client.data(ME))["me"]["mfaEnabled"] is True

    # The password alone is not enough, and no token is issued.
    body = await auth_app.client().execute(LOGIN, _login_vars(member.username, member.password))
    assert body["errors"][0]["extensions"]["code"] == "MFA_REQUIRED"
    assert body["data"] is None
    # The code already used to confirm cannot be replayed within its window.
    error = await auth_app.client().error(
        LOGIN, _login_vars(member.username, member.password, confirmed_code)
    )
    assert error["extensions"]["code"] == "INVALID_CREDENTIALS"
    # The next step's code works once (one step of drift is allowed) ...
    next_code = totp.at(time.time() + 30)
    await auth_app.client().data(LOGIN, _login_vars(member.username, member.password, next_code))
    # ... and not twice.
    error = await auth_app.client().error(
        LOGIN, _login_vars(member.username, member.password, next_code)
    )
    assert error["extensions"]["code"] == "INVALID_CREDENTIALS"
    # A recovery code signs in once.
    await auth_app.client().data(LOGIN, _login_vars(member.username, member.password, codes[0]))
    error = await auth_app.client().error(
        LOGIN, _login_vars(member.username, member.password, codes[0])
    )
    assert error["extensions"]["code"] == "INVALID_CREDENTIALS"
    # Disabling needs a valid code.
    disable = "mutation D($c: String!) { disableTotp(code: $c) }"
    error = await client.error(disable, {"c": codes[0]})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert await client.data(disable, {"c": codes[1].upper()}) == {"disableTotp": True}
    assert (await client.data(ME))["me"]["mfaEnabled"] is False
    await auth_app.client().data(LOGIN, _login_vars(member.username, member.password))


# ---------------------------------------------------------------- reset and verification


def _sink(auth_app: AuthApp) -> DevMailSink:
    mailer = auth_app.runtime.mail.mailer
    assert isinstance(mailer, DevMailSink)
    return mailer


async def _mails_to(auth_app: AuthApp, address: str, count: int) -> list[EmailMessage]:
    """The mails to `address` once `count` of them arrived (mail goes out in the background)."""
    await auth_app.runtime.mail.drain()
    mails = _sink(auth_app).mails_to(address)
    assert len(mails) == count, mails
    return mails


def _token_in(body: str, code: str) -> str:
    match = re.search(rf"^({re.escape(code)}\.[A-Za-z0-9_-]{{40,}})$", body, re.MULTILINE)
    assert match, body
    return match.group(1)


async def test_password_reset_through_the_mail_sink(
    auth_app: AuthApp, territories: Territories
) -> None:
    code = territories.home.code
    email = f"{unique_username()}@example.org"
    member = await register_member(auth_app, code, email=email)
    request = "mutation R($u: String!) { requestPasswordReset(username: $u) }"
    # Unknown users get the same answer, and no mail goes anywhere.
    assert await auth_app.client().data(request, {"u": unique_username()}) == {
        "requestPasswordReset": True
    }
    assert await auth_app.client().data(request, {"u": member.username}) == {
        "requestPasswordReset": True
    }
    mails = await _mails_to(auth_app, email, 1)
    token = _token_in(mails[0].get_content(), code)

    reset = "mutation S($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }"
    error = await auth_app.client().error(reset, {"t": token, "p": "qwerty123"})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "newPassword"}
    assert await auth_app.client().data(reset, {"t": token, "p": "my fresh passphrase"}) == {
        "resetPassword": True
    }
    # Single use, and every session of the account ended.
    error = await auth_app.client().error(reset, {"t": token, "p": "another passphrase"})
    assert error["extensions"]["code"] == "INVALID_TOKEN"
    error = await auth_app.client(member.access_token).error(ME)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    await auth_app.client().data(LOGIN, _login_vars(member.username, "my fresh passphrase"))


async def test_email_verification(auth_app: AuthApp, territories: Territories) -> None:
    code = territories.remote.code
    email = f"{unique_username()}@example.org"
    member = await register_member(auth_app, code, email=email)
    client = auth_app.client(member.access_token)
    assert (await client.data(ME))["me"]["isVerified"] is False
    assert await client.data("mutation { requestEmailVerification }") == {
        "requestEmailVerification": True
    }
    token = _token_in((await _mails_to(auth_app, email, 1))[-1].get_content(), code)
    verify = "mutation V($t: String!) { verifyEmail(token: $t) { id isVerified } }"
    error = await auth_app.client().error(verify, {"t": token[:-2] + "xx"})
    assert error["extensions"]["code"] == "INVALID_TOKEN"
    verified = await auth_app.client().data(verify, {"t": token})
    assert verified == {"verifyEmail": {"id": member.id, "isVerified": True}}
    error = await auth_app.client().error(verify, {"t": token})
    assert error["extensions"]["code"] == "INVALID_TOKEN"


# ---------------------------------------------------------------- tampered tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def test_tampered_access_tokens_are_refused(
    auth_app: AuthApp, territories: Territories, auth_settings: Settings, tmp_path: object
) -> None:
    member = await register_member(auth_app, territories.home.code)
    victim = await register_member(auth_app, territories.home.code)
    header, payload, signature = member.access_token.split(".")
    claims = json.loads(_unb64(payload))

    forged_claims = {**claims, "user_id": victim.id, "sub": victim.id}
    modified = f"{header}.{_b64(json.dumps(forged_claims).encode())}.{signature}"
    none_header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned = f"{none_header}.{_b64(json.dumps(forged_claims).encode())}."
    stranger_ring = KeyRing.from_settings(
        auth_settings.replace(DEVSTACK_DIR=str(tmp_path), APP_ENV="development")
    )
    foreign = stranger_ring.sign(forged_claims, ttl_seconds=900)

    for token in (modified, unsigned, foreign, member.access_token[:-3] + "abc"):
        error = await auth_app.client(token).error(ME)
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await auth_app.client(member.access_token).data(ME))["me"]["id"] == member.id
