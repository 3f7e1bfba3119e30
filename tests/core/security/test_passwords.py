"""Argon2id password hashing: verify, mismatch, rehash on parameter change, dummy verification."""

from __future__ import annotations

import pytest

from core.config import SecuritySettings
from core.security import PasswordHasher

# Small parameters keep the suite fast; the production defaults get one test of their own.
FAST = {"memory_kib": 1024, "time_cost": 1, "parallelism": 1}


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(**FAST)


def test_hash_is_argon2id_and_verifies(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert hasher.verify(stored, "correct horse battery staple")


def test_same_password_gets_different_salts(hasher: PasswordHasher) -> None:
    assert hasher.hash("pa55word-x") != hasher.hash("pa55word-x")


def test_wrong_password_is_false_not_an_exception(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    assert hasher.verify(stored, "correct horse battery stapl") is False
    assert hasher.verify(stored, "") is False


def test_unreadable_hash_is_false(hasher: PasswordHasher) -> None:
    assert hasher.verify("not-a-hash", "whatever") is False
    assert hasher.needs_rehash("not-a-hash") is True


def test_production_defaults_from_settings() -> None:
    production = PasswordHasher.from_settings(SecuritySettings())
    stored = production.hash("långt lösenord med unicode ✓")
    assert "$m=19456,t=2,p=1$" in stored
    assert production.verify(stored, "långt lösenord med unicode ✓")
    assert not production.needs_rehash(stored)


def test_needs_rehash_after_parameter_change(hasher: PasswordHasher) -> None:
    stored = hasher.hash("pa55word-x")
    assert not hasher.needs_rehash(stored)
    stronger = PasswordHasher(memory_kib=2048, time_cost=2, parallelism=1)
    assert stronger.needs_rehash(stored)
    assert stronger.verify(stored, "pa55word-x")  # old hashes keep working until rehashed


async def test_verify_and_update_returns_new_hash_only_when_parameters_changed(
    hasher: PasswordHasher,
) -> None:
    stored = await hasher.hash_async("pa55word-x")
    assert await hasher.verify_and_update(stored, "pa55word-x") == (True, None)
    assert await hasher.verify_and_update(stored, "wrong") == (False, None)

    stronger = PasswordHasher(memory_kib=2048, time_cost=2, parallelism=1)
    ok, new_hash = await stronger.verify_and_update(stored, "pa55word-x")
    assert ok
    assert new_hash is not None
    assert "$m=2048,t=2,p=1$" in new_hash
    assert not stronger.needs_rehash(new_hash)
    assert await stronger.verify_async(new_hash, "pa55word-x")


async def test_dummy_verification_always_fails(hasher: PasswordHasher) -> None:
    assert hasher.verify_dummy() is False
    assert await hasher.verify_dummy_async() is False
