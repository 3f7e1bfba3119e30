"""The pure rules under the subgraph: visibility, page sizes, cursors, input, image kinds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from core.errors import BadUserInput
from subgraphs.user.avatars import detect_format
from subgraphs.user.pagination import EdgeCursor, SearchCursor, page_size
from subgraphs.user.privacy import Relationship, Visibility, may_view_profile
from subgraphs.user.validation import validate_changes

OWNER = uuid.uuid4()
VIEWER = uuid.uuid4()
FOLLOWS = Relationship(viewer_follows_owner=True)


@pytest.mark.parametrize(
    ("visibility", "viewer", "relationship", "visible"),
    [
        (Visibility.PUBLIC, None, Relationship(), True),
        (Visibility.PUBLIC, VIEWER, Relationship(), True),
        (Visibility.PUBLIC, VIEWER, Relationship(owner_blocked_viewer=True), False),
        (Visibility.PUBLIC, VIEWER, Relationship(viewer_blocked_owner=True), False),
        (Visibility.CONNECTIONS, None, Relationship(), False),
        (Visibility.CONNECTIONS, VIEWER, Relationship(), False),
        (Visibility.CONNECTIONS, VIEWER, FOLLOWS, True),
        (
            Visibility.CONNECTIONS,
            VIEWER,
            Relationship(viewer_follows_owner=True, owner_blocked_viewer=True),
            False,
        ),
        (Visibility.PRIVATE, VIEWER, FOLLOWS, False),
        (Visibility.PRIVATE, None, Relationship(), False),
        (Visibility.PRIVATE, OWNER, Relationship(), True),
    ],
)
def test_visibility(
    visibility: Visibility, viewer: uuid.UUID | None, relationship: Relationship, visible: bool
) -> None:
    assert (
        may_view_profile(visibility, owner_id=OWNER, viewer_id=viewer, relationship=relationship)
        is visible
    )


def test_page_size_defaults_caps_and_refuses() -> None:
    assert page_size(None) == 20
    assert page_size(7) == 7
    assert page_size(5000) == 100
    for bad in (0, -1):
        with pytest.raises(BadUserInput) as refused:
            page_size(bad)
        assert refused.value.extensions == {"field": "first"}


def test_cursors_round_trip_and_refuse_forgeries() -> None:
    edge = EdgeCursor(at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), user_id=OWNER)
    assert EdgeCursor.decode(edge.encode()) == edge
    hit = SearchCursor(key="søren", user_id=OWNER)
    assert SearchCursor.decode(hit.encode()) == hit
    for forged in ("", "!!!", "bm9wZQ", hit.encode(), "WyJlIiwxLDJd"):
        with pytest.raises(BadUserInput):
            EdgeCursor.decode(forged)
    with pytest.raises(BadUserInput):
        SearchCursor.decode(edge.encode())


def test_profile_changes_are_cleaned_and_checked() -> None:
    changes = validate_changes(
        {
            "about": "  hi  ",
            "location": "",
            "websiteUrl": " https://example.org/me ",
            "twitterHandle": "@x_y",
            "interests": [" a ", "A", "b"],
            "visibility": "connections",
            "showEmail": True,
        }
    )
    assert changes == {
        "about": "hi",
        "location": None,
        "website_url": "https://example.org/me",
        "twitter_handle": "x_y",
        "interests": ["a", "b"],
        "visibility": Visibility.CONNECTIONS,
        "show_email": True,
    }
    assert validate_changes({"skills": None}) == {"skills": []}
    for sent, field in (
        ({"websiteUrl": "http://exa mple.org"}, "websiteUrl"),
        ({"githubUrl": "mailto:a@b.c"}, "githubUrl"),
        ({"twitterHandle": "a" * 16}, "twitterHandle"),
        ({"showRealName": None}, "showRealName"),
        ({"nickname": "x"}, "nickname"),
    ):
        with pytest.raises(BadUserInput) as refused:
            validate_changes(sent)
        assert refused.value.extensions == {"field": field}


def test_image_kinds_by_magic_bytes() -> None:
    assert detect_format(b"\x89PNG\r\n\x1a\n....") == "PNG"
    assert detect_format(b"\xff\xd8\xff\xe0....") == "JPEG"
    assert detect_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert detect_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert detect_format(b"GIF89a") is None
    assert detect_format(b"") is None
