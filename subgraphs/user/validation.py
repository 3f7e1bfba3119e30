"""Profile input rules: lengths from the original, http(s) URLs, handle format, capped lists.

`validate_changes` turns the fields a client sent (absent ones are not in the mapping; an
explicit None clears) into column values, or raises `BadUserInput` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from core.errors import BadUserInput
from core.input_checks import TERRITORY_CODE, UUID_ID, InputRule
from subgraphs.user.privacy import MessagePolicy, Theme, Visibility
from subgraphs.user.search import SEARCH_MAX_LENGTH

ABOUT_MAX = 2000
LOCATION_MAX = 255
URL_MAX = 2048
TWITTER_HANDLE_MAX = 100
BLOCK_REASON_MAX = 500
LIST_MAX_ITEMS = 50
LIST_ITEM_MAX = 50
# The handle format X enforces today (1-15 word characters); the original's 100-char column
# stays the outer bound. A leading "@" is accepted and dropped.
_TWITTER_HANDLE = re.compile(r"^[A-Za-z0-9_]{1,15}$")

# GraphQL input field -> profile column.
TEXT_FIELDS = {"about": ("about", ABOUT_MAX), "location": ("location", LOCATION_MAX)}
URL_FIELDS = {"websiteUrl": "website_url", "githubUrl": "github_url", "linkedinUrl": "linkedin_url"}
LIST_FIELDS = {"interests": "interests", "skills": "skills", "languages": "languages"}
ENUM_FIELDS: dict[str, tuple[str, type[Theme] | type[Visibility] | type[MessagePolicy]]] = {
    "theme": ("theme", Theme),
    "visibility": ("visibility", Visibility),
    "allowMessagesFrom": ("allow_messages_from", MessagePolicy),
}
FLAG_FIELDS = {"showEmail": "show_email", "showRealName": "show_real_name"}
PRIVACY_COLUMNS = frozenset({"visibility", "show_email", "show_real_name", "allow_messages_from"})


def validate_changes(sent: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for the fields in `sent`; a None clears a clearable field."""
    changes: dict[str, Any] = {}
    for field, value in sent.items():
        if field in TEXT_FIELDS:
            column, limit = TEXT_FIELDS[field]
            changes[column] = _text(field, value, limit)
        elif field in URL_FIELDS:
            changes[URL_FIELDS[field]] = _url(field, value)
        elif field in LIST_FIELDS:
            changes[LIST_FIELDS[field]] = _string_list(field, value)
        elif field == "twitterHandle":
            changes["twitter_handle"] = _twitter_handle(value)
        elif field in ENUM_FIELDS:
            column, kind = ENUM_FIELDS[field]
            if value is None:
                raise BadUserInput(f"`{field}` cannot be cleared", field=field)
            changes[column] = kind(value)
        elif field in FLAG_FIELDS:
            if value is None:
                raise BadUserInput(f"`{field}` cannot be cleared", field=field)
            changes[FLAG_FIELDS[field]] = bool(value)
        else:
            raise BadUserInput(f"Unknown profile field `{field}`", field=field)
    return changes


def _text(field: str, value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    cleaned = value.strip()
    if len(cleaned) > limit:
        raise BadUserInput(f"`{field}` is longer than {limit} characters", field=field)
    return cleaned or None


def _url(field: str, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    cleaned = value.strip()
    if len(cleaned) > URL_MAX or any(ch.isspace() for ch in cleaned):
        raise BadUserInput(f"`{field}` is not a valid URL", field=field)
    try:
        parts = urlsplit(cleaned)
        hostname = parts.hostname
    except ValueError as exc:
        raise BadUserInput(f"`{field}` is not a valid URL", field=field) from exc
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        raise BadUserInput(f"`{field}` must be an http(s) URL with a host", field=field)
    return cleaned


def _string_list(field: str, value: list[str] | None) -> list[str]:
    if value is None:
        return []
    if len(value) > LIST_MAX_ITEMS:
        raise BadUserInput(f"`{field}` has more than {LIST_MAX_ITEMS} items", field=field)
    seen: set[str] = set()
    items: list[str] = []
    for raw in value:
        item = raw.strip()
        if not item:
            raise BadUserInput(f"`{field}` contains an empty item", field=field)
        if len(item) > LIST_ITEM_MAX:
            raise BadUserInput(
                f"Items of `{field}` are at most {LIST_ITEM_MAX} characters", field=field
            )
        # Duplicates differing only in case add nothing; keep the first spelling.
        if item.casefold() not in seen:
            seen.add(item.casefold())
            items.append(item)
    return items


def _twitter_handle(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    handle = value.strip().removeprefix("@")
    if len(handle) > TWITTER_HANDLE_MAX or not _TWITTER_HANDLE.match(handle):
        raise BadUserInput(
            "`twitterHandle` must be 1-15 letters, digits or underscores", field="twitterHandle"
        )
    return handle


# The edge limits of every String and ID the user subgraph accepts (see `core.input_checks`),
# checked before any resolver runs; the rules above then apply to what passed.
CURSOR = InputRule(512)
INPUT_RULES: dict[str, InputRule] = {
    "Query.profile(userId:)": UUID_ID,
    "Query.searchUsers(query:)": InputRule(SEARCH_MAX_LENGTH),
    "Query.searchUsers(after:)": CURSOR,
    "Query.searchUsers(territoryCodes:)": TERRITORY_CODE,
    "User.followers(after:)": CURSOR,
    "User.following(after:)": CURSOR,
    "Mutation.follow(userId:)": UUID_ID,
    "Mutation.unfollow(userId:)": UUID_ID,
    "Mutation.block(userId:)": UUID_ID,
    "Mutation.block(reason:)": InputRule(BLOCK_REASON_MAX),
    "Mutation.unblock(userId:)": UUID_ID,
    "Subscription.userUpdated(userId:)": UUID_ID,
    "UpdateProfileInput.about": InputRule(ABOUT_MAX),
    "UpdateProfileInput.location": InputRule(LOCATION_MAX),
    "UpdateProfileInput.websiteUrl": InputRule(URL_MAX),
    "UpdateProfileInput.githubUrl": InputRule(URL_MAX),
    "UpdateProfileInput.linkedinUrl": InputRule(URL_MAX),
    # The handle is checked for its format below; this is the outer bound of its column.
    "UpdateProfileInput.twitterHandle": InputRule(TWITTER_HANDLE_MAX),
    # Per item of the lists.
    "UpdateProfileInput.interests": InputRule(LIST_ITEM_MAX),
    "UpdateProfileInput.skills": InputRule(LIST_ITEM_MAX),
    "UpdateProfileInput.languages": InputRule(LIST_ITEM_MAX),
}
