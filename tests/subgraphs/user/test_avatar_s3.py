"""Avatars in an S3-compatible store: requests signed exactly as AWS's own SDK signs them, and
the whole upload/serve/replace/delete cycle of the app against a real S3 API server (moto's)."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import httpx
import orjson
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.server import ThreadedMotoServer
from PIL import Image

from core.config import Settings
from core.db import Database
from subgraphs.user.app import create_app
from subgraphs.user.s3 import S3BlobStore
from tests.lifespan import running
from tests.signing import SignedAsRouter
from tests.subgraphs.user.conftest import People, Territories, UserApp


def test_signatures_match_the_aws_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    store = S3BlobStore.from_url("s3+https://AKID:se%2Fcret@s3.example.org/bucket/pre?region=eu-2")
    moment = datetime(2026, 11, 26, 12, 30, 5, tzinfo=UTC)
    # The SDK signs at "now": let its now be ours.
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: moment.replace(tzinfo=None))
    cases: list[tuple[str, str, dict[str, str], bytes]] = [
        ("PUT", "/bucket/pre/a b/ø.webp", {}, b"\x00image"),
        ("GET", "/bucket", {"list-type": "2", "prefix": "pre/x/"}, b""),
        ("DELETE", "/bucket/pre/k", {}, b""),
    ]
    for method, path, query, body in cases:
        headers, canonical_path, canonical_query = store.sign(method, path, query, body, moment)
        url = "https://s3.example.org" + canonical_path
        if canonical_query:
            url += "?" + canonical_query
        request = AWSRequest(method=method, url=url, data=body)
        S3SigV4Auth(Credentials("AKID", "se/cret"), "s3", "eu-2").add_auth(request)
        assert headers["authorization"] == request.headers["Authorization"], (method, path)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        ).create_bucket(Bucket="avatars")
        yield f"s3+http://test:test@{host}:{port}/avatars/unityplan?region=us-east-1"
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def s3_app(
    user_settings: Settings, territories: Territories, s3_server: str
) -> AsyncIterator[UserApp]:
    settings = user_settings.replace(AVATAR_STORAGE_URL=s3_server)
    app = create_app(settings, run_outbox_relay=False, run_consumers=False)
    db = Database(settings.database)
    try:
        async with (
            running(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://user.test",
                auth=SignedAsRouter(settings),
            ) as http,
        ):
            yield UserApp(
                http,
                People(settings, db),
                db,
                settings,
                Path("/nonexistent"),
                app.state.user_runtime,
                app.state,
            )
    finally:
        await db.dispose()


async def upload(app: UserApp, token: str, data: bytes) -> dict[str, Any]:
    operations = {
        "query": "mutation($f: Upload!) { uploadAvatar(file: $f) { avatarUrl(size: SMALL) } }",
        "variables": {"f": None},
    }
    response = await app.http.post(
        "/graphql",
        data={"operations": orjson.dumps(operations).decode(), "map": '{"0": ["variables.f"]}'},
        files={"0": ("a.png", data, "image/png")},
        headers={"Authorization": f"Bearer {token}"},
    )
    body: dict[str, Any] = response.json()
    return body


def png(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), color).save(out, format="PNG")
    return out.getvalue()


async def test_avatar_cycle_in_s3(s3_app: UserApp, territories: Territories) -> None:
    who = await s3_app.people.create(territories.home.code)
    store = s3_app.runtime.blobs
    first = (await upload(s3_app, who.token, png((255, 0, 0))))["data"]["uploadAvatar"]["avatarUrl"]
    response = await s3_app.http.get(first.removeprefix("http://user.test"))
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (128, 85)
    assert len(await store.keys(who.id)) == 4
    second = (await upload(s3_app, who.token, png((0, 0, 255))))["data"]["uploadAvatar"][
        "avatarUrl"
    ]
    assert second != first
    assert (await s3_app.http.get(first.removeprefix("http://user.test"))).status_code == 404
    assert len(await store.keys(who.id)) == 4
    assert (await s3_app.client(who).data("mutation { deleteAvatar }"))["deleteAvatar"] is True
    assert await store.keys(who.id) == []
