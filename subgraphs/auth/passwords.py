"""The password policy: 8 to 128 characters, no composition rules, not common, not the username.

The common-passwords list (30,000 entries, most frequent first) ships with the package.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from core.errors import BadUserInput

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("subgraphs.auth").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def check_password(password: str, *, username: str | None, field: str = "password") -> None:
    """Raise `BadUserInput(field=...)` when `password` breaks the policy."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadUserInput(f"Passwords have at least {MIN_PASSWORD_LENGTH} characters", field=field)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadUserInput(f"Passwords have at most {MAX_PASSWORD_LENGTH} characters", field=field)
    if username is not None and password.casefold() == username.casefold():
        raise BadUserInput("The password must not be the username", field=field)
    if password.lower() in common_passwords():
        raise BadUserInput(
            "This password is among the most common ones; choose another", field=field
        )
