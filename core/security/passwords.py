"""Password hashing with Argon2id (OWASP parameters by default) and timing-equal failures.

Hashing is CPU-bound for tens of milliseconds; the `*_async` helpers run it in a worker thread
so one login never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import secrets

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.config import SecuritySettings


class PasswordHasher:
    """Argon2id hashes in PHC string form; `verify` never raises for a wrong password."""

    def __init__(
        self, *, memory_kib: int = 19456, time_cost: int = 2, parallelism: int = 1
    ) -> None:
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        # Made up front, so even the first unknown-user login costs exactly one verification.
        self._dummy_hash = self.hash(secrets.token_urlsafe(24))

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> PasswordHasher:
        return cls(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        )

    def hash(self, password: str) -> str:
        return self._argon2.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches; False on mismatch or an unreadable hash."""
        try:
            return self._argon2.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def verify_dummy(self) -> bool:
        """Spend the time of a real verification, for unknown users; always False."""
        self.verify(self._dummy_hash, secrets.token_urlsafe(24))
        return False

    async def hash_async(self, password: str) -> str:
        return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self.verify, password_hash, password)

    async def verify_dummy_async(self) -> bool:
        return await asyncio.to_thread(self.verify_dummy)

    async def verify_and_update(self, password_hash: str, password: str) -> tuple[bool, str | None]:
        """Verify, and on success a new hash when the parameters changed (store it), else None."""
        if not await self.verify_async(password_hash, password):
            return False, None
        if self.needs_rehash(password_hash):
            return True, await self.hash_async(password)
        return True, None
