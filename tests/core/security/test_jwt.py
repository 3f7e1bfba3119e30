"""Access tokens: round trip, every kind of tampering refused, key rotation, JWKS, dev keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from jose import jwt as jose_jwt

from core.config import Settings
from core.errors import ConfigError, Unauthenticated
from core.security import KeyRing, SigningKey, generate_private_pem, load_signing_key
from core.security.keys import thumbprint

PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _key(algorithm: str = "ES256") -> SigningKey:
    return load_signing_key(generate_private_pem(algorithm), algorithm)  # type: ignore[arg-type]


def _ring(*keys: SigningKey, issuer: str = "unityplan", audience: str = "unityplan") -> KeyRing:
    return KeyRing(list(keys), issuer=issuer, audience=audience)


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": "u1",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": "unityplan",
        "aud": "unityplan",
        "jti": "j1",
    }
    claims.update(overrides)
    return claims


def _forge(key: SigningKey, claims: dict[str, Any], **headers: Any) -> str:
    """A token signed with `key`'s private half, with full control over claims and header."""
    return jose_jwt.encode(
        claims, key.private_pem, algorithm=key.algorithm, headers={"kid": key.kid, **headers}
    )


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return _key()


@pytest.fixture(scope="module")
def ring(key: SigningKey) -> KeyRing:
    return _ring(key)


def test_round_trip_carries_claims_and_registered_ones(ring: KeyRing) -> None:
    token = ring.sign({"sub": "u1", "roles": ["member"], "iss": "evil"}, ttl_seconds=900)
    header = jose_jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["kid"] == ring.signing_kid

    claims = ring.verify(token)

    assert claims["sub"] == "u1"
    assert claims["roles"] == ["member"]
    assert claims["iss"] == "unityplan"  # the ring owns the registered claims
    assert claims["aud"] == "unityplan"
    assert claims["exp"] - claims["iat"] == 900
    assert claims["nbf"] == claims["iat"]
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16


def test_each_token_gets_its_own_jti_unless_given(ring: KeyRing) -> None:
    first = ring.verify(ring.sign({"sub": "u1"}, ttl_seconds=60))
    second = ring.verify(ring.sign({"sub": "u1"}, ttl_seconds=60))
    fixed = ring.verify(ring.sign({"sub": "u1", "jti": "chosen"}, ttl_seconds=60))
    assert first["jti"] != second["jti"]
    assert fixed["jti"] == "chosen"


def test_rs256_round_trip() -> None:
    rsa_ring = _ring(_key("RS256"))
    token = rsa_ring.sign({"sub": "u1"}, ttl_seconds=60)
    assert jose_jwt.get_unverified_header(token)["alg"] == "RS256"
    assert rsa_ring.verify(token)["sub"] == "u1"


def test_alg_none_refused(ring: KeyRing) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": ring.signing_kid}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    with pytest.raises(Unauthenticated):
        ring.verify(f"{header}.{payload}.")


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_hs256_signed_with_the_public_key_refused(algorithm: str) -> None:
    key = _key(algorithm)
    victim = _ring(key)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    signing_input = f"{header}.{payload}".encode()
    for secret in (key.public_pem.encode(), json.dumps(key.public_jwk).encode()):
        signature = _b64(hmac.new(secret, signing_input, hashlib.sha256).digest())
        with pytest.raises(Unauthenticated):
            victim.verify(f"{header}.{payload}.{signature}")


def test_unknown_kid_refused(ring: KeyRing) -> None:
    stranger = _key()
    with pytest.raises(Unauthenticated):
        ring.verify(_forge(stranger, _claims()))


def test_known_kid_but_foreign_signature_refused(ring: KeyRing) -> None:
    stranger = _key()
    token = _forge(stranger, _claims(), kid=ring.signing_kid)
    with pytest.raises(Unauthenticated):
        ring.verify(token)


def test_missing_kid_refused(ring: KeyRing, key: SigningKey) -> None:
    token = jose_jwt.encode(_claims(), key.private_pem, algorithm="ES256")
    with pytest.raises(Unauthenticated):
        ring.verify(token)


def test_expired_refused(ring: KeyRing, key: SigningKey) -> None:
    now = int(time.time())
    with pytest.raises(Unauthenticated):
        ring.verify(ring.sign({"sub": "u1"}, ttl_seconds=-(ring.leeway_seconds + 5)))
    with pytest.raises(Unauthenticated):
        ring.verify(_forge(key, _claims(iat=now - 900, nbf=now - 900, exp=now - 60)))


def test_expiry_within_leeway_accepted(ring: KeyRing, key: SigningKey) -> None:
    now = int(time.time())
    token = _forge(key, _claims(exp=now - ring.leeway_seconds // 2))
    assert ring.verify(token)["sub"] == "u1"


def test_not_yet_valid_refused(ring: KeyRing, key: SigningKey) -> None:
    now = int(time.time())
    with pytest.raises(Unauthenticated):
        ring.verify(_forge(key, _claims(nbf=now + 3600, exp=now + 7200)))


def test_wrong_audience_refused(ring: KeyRing, key: SigningKey) -> None:
    with pytest.raises(Unauthenticated):
        ring.verify(_forge(key, _claims(aud="someone-else")))
    with pytest.raises(Unauthenticated):
        ring.verify(_ring(key, audience="someone-else").sign({"sub": "u1"}, ttl_seconds=60))


def test_wrong_issuer_refused(ring: KeyRing, key: SigningKey) -> None:
    with pytest.raises(Unauthenticated):
        ring.verify(_forge(key, _claims(iss="https://evil.example")))


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "jti"])
def test_missing_registered_claim_refused(ring: KeyRing, key: SigningKey, claim: str) -> None:
    claims = _claims()
    del claims[claim]
    with pytest.raises(Unauthenticated):
        ring.verify(_forge(key, claims))


def test_modified_payload_refused(ring: KeyRing) -> None:
    token = ring.sign({"sub": "u1", "roles": []}, ttl_seconds=60)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["platform_admin"]
    forged_payload = _b64(json.dumps(claims).encode())
    with pytest.raises(Unauthenticated):
        ring.verify(f"{header}.{forged_payload}.{signature}")


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "a.b", "....", "x" * 5000])
def test_garbage_refused_with_generic_message(ring: KeyRing, garbage: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        ring.verify(garbage)
    assert caught.value.message == "Invalid or expired access token"


def test_rotation_old_key_verifies_until_removed() -> None:
    old, new = _key(), _key()
    old_token = _ring(old).sign({"sub": "u1"}, ttl_seconds=600)

    rotated = _ring(new, old)
    assert rotated.signing_kid == new.kid
    assert rotated.verify(old_token)["sub"] == "u1"
    new_token = rotated.sign({"sub": "u2"}, ttl_seconds=600)
    assert jose_jwt.get_unverified_header(new_token)["kid"] == new.kid

    retired = _ring(new)
    assert retired.verify(new_token)["sub"] == "u2"
    with pytest.raises(Unauthenticated):
        retired.verify(old_token)


def test_ring_refuses_mixed_algorithms() -> None:
    with pytest.raises(ConfigError):
        _ring(_key("ES256"), _key("RS256"))


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_jwks_has_only_public_parameters(algorithm: str) -> None:
    keys = [_key(algorithm), _key(algorithm)]
    jwks = _ring(*keys).jwks()

    assert [entry["kid"] for entry in jwks["keys"]] == [key.kid for key in keys]
    for entry in jwks["keys"]:
        assert not PRIVATE_JWK_MEMBERS & set(entry)
        assert entry["alg"] == algorithm
        assert entry["use"] == "sig"
        assert entry["kid"] == thumbprint(entry)
    assert "PRIVATE" not in json.dumps(jwks)


def test_thumbprint_matches_rfc7638_example() -> None:
    jwk = {
        "kty": "RSA",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
            "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65"
            "YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyr"
            "dkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKn"
            "qDKgw"
        ),
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_development_key_generated_once_with_private_mode(settings: Settings) -> None:
    first = KeyRing.from_settings(settings)
    key_files = list((Path(settings.devstack.dir) / "keys").glob("*.pem"))
    assert len(key_files) == 1
    assert stat.S_IMODE(key_files[0].stat().st_mode) == 0o600

    second = KeyRing.from_settings(settings)
    assert second.signing_kid == first.signing_kid
    assert second.verify(first.sign({"sub": "u1"}, ttl_seconds=60))["sub"] == "u1"


def test_configured_keys_newest_signs(settings: Settings) -> None:
    old, new = generate_private_pem("ES256"), generate_private_pem("ES256")
    configured = settings.replace(JWT_PRIVATE_KEYS=json.dumps([new, old]))
    ring = KeyRing.from_settings(configured)
    assert ring.signing_kid == load_signing_key(new, "ES256").kid
    assert ring.kids[1] == load_signing_key(old, "ES256").kid


def test_production_without_keys_fails_naming_the_variable(settings: Settings) -> None:
    production = settings.replace(APP_ENV="production", JWT_PRIVATE_KEYS="[]")
    with pytest.raises(ConfigError, match="JWT_PRIVATE_KEYS"):
        KeyRing.from_settings(production)


def test_key_of_the_wrong_type_fails_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="JWT_PRIVATE_KEYS"):
        load_signing_key(generate_private_pem("RS256"), "ES256")
    with pytest.raises(ConfigError, match="JWT_PRIVATE_KEYS"):
        load_signing_key("not a key", "ES256")


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_verify_only_ring_from_the_published_jwks(algorithm: str) -> None:
    old, new = _key(algorithm), _key(algorithm)
    issuer_ring = _ring(new, old)
    token = _ring(old).sign({"sub": "u1"}, ttl_seconds=60)

    verifier = KeyRing.from_jwks(
        issuer_ring.jwks(),
        algorithm=algorithm,
        issuer="unityplan",
        audience="unityplan",  # type: ignore[arg-type]
    )

    assert verifier.kids == [new.kid, old.kid]
    assert not verifier.can_sign
    assert issuer_ring.can_sign
    assert verifier.verify(token)["sub"] == "u1"
    assert verifier.verify(issuer_ring.sign({"sub": "u2"}, ttl_seconds=60))["sub"] == "u2"
    assert verifier.jwks() == issuer_ring.jwks()
    with pytest.raises(RuntimeError):
        verifier.sign({"sub": "u1"}, ttl_seconds=60)


def test_jwks_entries_that_do_not_fit_are_left_out() -> None:
    good, other = _key(), _key()
    wrong_kid = {**other.public_jwk, "kid": good.kid}  # claims to be the good key
    rsa = _key("RS256").public_jwk
    jwks = {"keys": [wrong_kid, rsa, {"kty": "EC"}, "junk", good.public_jwk]}

    verifier = KeyRing.from_jwks(jwks, algorithm="ES256", issuer="unityplan", audience="unityplan")

    assert verifier.kids == [good.kid]
    with pytest.raises(Unauthenticated):
        verifier.verify(_forge(other, _claims(), kid=good.kid))


def test_empty_jwks_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="JWKS"):
        KeyRing.from_jwks({"keys": []}, algorithm="ES256", issuer="unityplan", audience="unityplan")
