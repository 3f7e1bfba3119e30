"""The auth subgraph's SDL composes with the user subgraph's into the contract's API schema."""

from __future__ import annotations

import re

from router.supergraph import parse_supergraph
from unityplan.cli.router_commands import compose_local


def _type_body(sdl: str, name: str) -> str:
    match = re.search(rf"^type {name}\b[^{{]*{{(.*?)^}}", sdl, re.MULTILINE | re.DOTALL)
    assert match, f"type {name} missing"
    return match.group(1)


def test_auth_and_user_compose_and_hide_the_privacy_flags() -> None:
    supergraph = compose_local()
    api = parse_supergraph(supergraph).api_sdl
    user = _type_body(api, "User")
    for field in (
        "id: ID!",
        "username: String!",
        "federatedAddress: String!",
        "email: String",
        "fullName: String",
        "lastLoginAt: DateTime",
        "mfaEnabled: Boolean!",
        "territory: Territory!",
        "profile: Profile",
    ):
        assert field in user, field
    # The flags cross the boundary for `@requires` only; clients never see them on User.
    assert "showEmail" not in user
    assert "showRealName" not in user
    assert 'requires: "showEmail"' in supergraph
    for operation in (
        "login(input: LoginInput!): AuthPayload!",
        "sessionRevoked: Session!",
        "territoryMemberJoined(territoryCode: ID!): User!",
        "exportMyData: DataExport!",
        "jwks: String!",
    ):
        assert operation in api, operation
