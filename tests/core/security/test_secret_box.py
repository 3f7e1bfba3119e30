"""Sealed values: round trip, bound to their context, key rotation, where the keys come from."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings
from core.errors import ConfigError
from core.security.secret_box import SealedValueError, SecretBox

OLD = "old-data-key-" + "o" * 40
NEW = "new-data-key-" + "n" * 40


def test_a_sealed_value_opens_only_in_its_context_and_with_its_key() -> None:
    box = SecretBox([OLD])
    sealed = box.seal("JBSWY3DPEHPK3PXP", "mfa_secrets.secret:user-1")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert box.seal("JBSWY3DPEHPK3PXP", "mfa_secrets.secret:user-1") != sealed  # fresh nonce
    assert box.open(sealed, "mfa_secrets.secret:user-1") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(SealedValueError):
        box.open(sealed, "mfa_secrets.secret:user-2")
    with pytest.raises(SealedValueError):
        SecretBox([NEW]).open(sealed, "mfa_secrets.secret:user-1")
    version, kid, body = sealed.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    for broken in (f"{version}.{kid}.{flipped}", f"v2.{kid}.{body}", "plain", f"{version}.{kid}."):
        with pytest.raises(SealedValueError):
            box.open(broken, "mfa_secrets.secret:user-1")


def test_rotation_seals_with_the_newest_and_opens_with_every_key() -> None:
    old_value = SecretBox([OLD]).seal("secret", "c")
    during = SecretBox([NEW, OLD])
    assert during.needs_rotation(old_value)
    assert during.open(old_value, "c") == "secret"
    resealed = during.seal(during.open(old_value, "c"), "c")
    assert not during.needs_rotation(resealed)
    assert SecretBox([NEW]).open(resealed, "c") == "secret"


def test_keys_from_the_settings(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DATA_ENCRYPTION_KEYS"):
        SecretBox.from_settings(settings.replace(APP_ENV="production", DATA_ENCRYPTION_KEYS=""))
    production = settings.replace(APP_ENV="production", DATA_ENCRYPTION_KEYS=f"{NEW},{OLD}")
    assert SecretBox.from_settings(production).open(SecretBox([OLD]).seal("x", "c"), "c") == "x"
    development = settings.replace(DATA_ENCRYPTION_KEYS="", DEVSTACK_DIR=str(tmp_path))
    sealed = SecretBox.from_settings(development).seal("x", "c")
    assert SecretBox.from_settings(development).open(sealed, "c") == "x"  # the same stored key
    assert (tmp_path / "keys" / "data-encryption.key").stat().st_mode & 0o777 == 0o600
