"""Event subjects, stream names and the namespace: only valid tokens ever reach NATS."""

from __future__ import annotations

import pytest

from core.errors import BadUserInput
from core.events.subjects import (
    Namespace,
    Scope,
    Subject,
    cross_subject,
    global_subject,
    parse_subject,
    stream_for_filter,
    territory_stream,
    territory_subject,
    validate_durable_name,
    validate_subject,
)


def test_builders_follow_scope_origin_domain_action() -> None:
    assert territory_subject("dk", "user", "registered") == "territory.dk.user.registered"
    assert global_subject("user", "registered") == "global.user.registered"
    assert cross_subject("dk", "no", "membership_requested") == "cross.dk.no.membership_requested"
    assert territory_subject("dk-north", "user", "password_changed") == (
        "territory.dk-north.user.password_changed"
    )


@pytest.mark.parametrize(
    "code", ["dk.>", "dk *", "*", ">", "DK", "dk; drop schema", "../x", "x", "", "a" * 200]
)
def test_territory_codes_cannot_shape_a_subject(code: str) -> None:
    with pytest.raises(BadUserInput) as caught:
        territory_subject(code, "user", "registered")
    assert caught.value.extensions["field"] == "territoryCode"
    with pytest.raises(BadUserInput):
        cross_subject("dk", code, "moved")


@pytest.mark.parametrize("name", ["user.x", "User", "*", ">", "a b", "", "1user", "ü"])
def test_domain_and_action_are_single_lowercase_tokens(name: str) -> None:
    with pytest.raises(ValueError, match="Invalid event"):
        global_subject(name, "registered")
    with pytest.raises(ValueError, match="Invalid event"):
        territory_subject("dk", "user", name)


def test_parse_round_trips_and_names_the_parts() -> None:
    parsed = parse_subject("cross.dk.no.moved")
    assert parsed == Subject(Scope.CROSS, "moved", origin="dk", target="no")
    assert str(parse_subject("territory.dk.user.registered")) == "territory.dk.user.registered"
    assert parse_subject("global.user.registered").domain == "user"


@pytest.mark.parametrize(
    "subject",
    [
        "global.user",
        "global.user.registered.extra",
        "territory.dk.user",
        "territory.dk.user.>",
        "territory.*.user.registered",
        "local.dk.user.registered",
        "t1.territory.dk.user.registered",
        "",
    ],
)
def test_malformed_subjects_are_rejected(subject: str) -> None:
    with pytest.raises((ValueError, BadUserInput)):
        validate_subject(subject)


def test_namespace_prefixes_subjects_and_streams() -> None:
    scoped = Namespace("t0a1b2")
    assert scoped.wire_subject("global.user.registered") == "t0a1b2.global.user.registered"
    assert scoped.logical_subject("t0a1b2.global.user.registered") == "global.user.registered"
    assert scoped.stream("GLOBAL_EVENTS") == "T0A1B2_GLOBAL_EVENTS"
    with pytest.raises(ValueError, match="outside namespace"):
        scoped.logical_subject("other.global.user.registered")
    plain = Namespace()
    assert plain.wire_subject("cross.dk.no.moved") == "cross.dk.no.moved"
    assert plain.stream("CROSS_TERRITORY") == "CROSS_TERRITORY"


def test_stream_names_and_consumer_filters() -> None:
    assert territory_stream("dk") == "TERRITORY_DK"
    assert territory_stream("dk-north") == "TERRITORY_DK_NORTH"
    assert stream_for_filter("territory.dk.>") == "TERRITORY_DK"
    assert stream_for_filter("territory.dk.user.*") == "TERRITORY_DK"
    assert stream_for_filter("global.user.registered") == "GLOBAL_EVENTS"
    assert stream_for_filter("cross.*.dk.>") == "CROSS_TERRITORY"
    for spanning in ("territory.*.user.registered", ">", "territory.>", "global.>.x", "a b.c"):
        with pytest.raises(ValueError, match=r"(?i)subject filter"):
            stream_for_filter(spanning)


def test_durable_names() -> None:
    assert validate_durable_name("user-profile_projector") == "user-profile_projector"
    for bad in ("", "a.b", "a b", "x" * 129, "a>"):
        with pytest.raises(ValueError, match="durable"):
            validate_durable_name(bad)
