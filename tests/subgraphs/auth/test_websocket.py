"""Subscriptions through the app's real WebSocket endpoint (graphql-transport-ws)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar.testing import TestClient

from core.config import Settings
from subgraphs.auth.app import create_app
from subgraphs.auth.bootstrap import bootstrap_territory
from tests.signing import SignedAsRouter, websocket_proof
from tests.subgraphs.auth.conftest import LOGIN, REGISTER, Territories, unique_username

SESSION_REVOKED = "subscription { sessionRevoked { id userAgent current } }"


def _graphql(
    client: TestClient[Any], query: str, variables: dict[str, Any], agent: str = "ws-tests/1"
) -> dict[str, Any]:
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"User-Agent": agent}
    )
    body: dict[str, Any] = response.json()
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data


def test_session_revoked_over_websocket(auth_settings: Settings, territories: Territories) -> None:
    code = territories.home.code
    invitation = asyncio.run(
        bootstrap_territory(auth_settings, code, admin_username=unique_username("wsroot"))
    ).invitation_token
    username, password = unique_username(), "listening over a socket"
    app = create_app(auth_settings)
    feed = app.state.auth_runtime.feed
    with TestClient(app) as client:
        client.auth = SignedAsRouter(auth_settings)
        registered = _graphql(
            client,
            REGISTER,
            {
                "input": {
                    "territoryCode": code,
                    "invitationToken": invitation,
                    "username": username,
                    "password": password,
                }
            },
        )["register"]
        laptop = _graphql(
            client, LOGIN, {"input": {"username": username, "password": password}}, "laptop/7"
        )["login"]
        subscribe = {"type": "subscribe", "payload": {"query": SESSION_REVOKED}}
        with client.websocket_connect(
            "/graphql",
            subprotocols=["graphql-transport-ws"],
            headers=websocket_proof(auth_settings),
        ) as ws:
            ws.send_json({"type": "connection_init", "payload": {}})
            assert ws.receive_json() == {"type": "connection_ack"}
            ws.send_json({"id": "anonymous", **subscribe})
            refused = ws.receive_json(timeout=5.0)
            assert refused["id"] == "anonymous"
            assert refused["payload"]["errors"][0]["message"] == "Authentication required"
        with client.websocket_connect(
            "/graphql",
            subprotocols=["graphql-transport-ws"],
            headers=websocket_proof(auth_settings),
        ) as ws:
            bearer = f"Bearer {registered['accessToken']}"
            ws.send_json({"type": "connection_init", "payload": {"Authorization": bearer}})
            assert ws.receive_json() == {"type": "connection_ack"}
            ws.send_json({"id": "mine", **subscribe})
            # Wait until the subscription listens on NATS, then end the laptop's session.
            deadline = time.monotonic() + 10
            while feed.listening < 1:
                assert time.monotonic() < deadline, "the subscription never started listening"
                time.sleep(0.02)
            _graphql(
                client,
                "mutation L($t: String!) { logout(refreshToken: $t) }",
                {"t": laptop["refreshToken"]},
            )
            message = ws.receive_json(timeout=10.0)
            assert message["type"] == "next", message
            revoked = message["payload"]["data"]["sessionRevoked"]
            assert revoked == {"id": revoked["id"], "userAgent": "laptop/7", "current": False}
            ws.send_json({"id": "mine", "type": "complete"})
