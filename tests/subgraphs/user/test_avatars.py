"""Avatars through the GraphQL multipart request spec: accepted formats, every refusal, the four
stored sizes, replacement and deletion, and the image endpoint's caching headers."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import orjson
from PIL import Image

from core.config import Settings
from core.db import Database
from subgraphs.user.app import create_app
from tests.lifespan import running
from tests.signing import SignedAsRouter
from tests.subgraphs.user.conftest import People, Person, Territories, UserApp

UPLOAD = """
mutation($file: Upload!) {
  uploadAvatar(file: $file) {
    original: avatarUrl thumb: avatarUrl(size: THUMB) small: avatarUrl(size: SMALL)
    medium: avatarUrl(size: MEDIUM)
  }
}
"""
CURRENT = "query($id: ID!) { profile(userId: $id) { avatarUrl(size: MEDIUM) } }"


def image_bytes(kind: str, size: tuple[int, int] = (800, 600), **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, format=kind, **save)
    return out.getvalue()


async def upload(
    app: UserApp,
    who: Person,
    data: bytes,
    filename: str = "me.png",
    content_type: str = "image/png",
) -> tuple[int, dict[str, Any]]:
    operations = {"query": UPLOAD, "variables": {"file": None}}
    response = await app.http.post(
        "/graphql",
        data={"operations": orjson.dumps(operations).decode(), "map": '{"0": ["variables.file"]}'},
        files={"0": (filename, data, content_type)},
        headers={"Authorization": f"Bearer {who.token}"},
    )
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def fetch(app: UserApp, url: str) -> Any:
    return await app.http.get(url.removeprefix("http://user.test"))


def stored_files(app: UserApp, who: Person) -> list[str]:
    base = app.avatar_dir / who.id
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


async def test_png_upload_stores_four_sizes_served_with_cache_headers(
    user_app: UserApp, territories: Territories
) -> None:
    who = await user_app.people.create(territories.home.code)
    status, body = await upload(user_app, who, image_bytes("PNG", (1000, 500)))
    assert status == 200, body
    urls = body["data"]["uploadAvatar"]
    expected = {"original": 512, "thumb": 64, "small": 128, "medium": 256}
    for name, edge in expected.items():
        response = await fetch(user_app, urls[name])
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/webp"
        assert "immutable" in response.headers["cache-control"]
        assert response.headers["etag"]
        picture = Image.open(io.BytesIO(response.content))
        assert picture.format == "WEBP"
        assert max(picture.size) == edge
        assert picture.size == (edge, edge // 2)
    assert len(stored_files(user_app, who)) == 4
    # `User.avatarUrl` (taken over from the auth subgraph) follows the profile's visibility.
    entity = """
    query($reps: [_Any!]!) { _entities(representations: $reps) { ... on User { avatarUrl } } }
    """
    reps = {"reps": [{"__typename": "User", "id": who.id}]}
    stranger = await user_app.people.create(territories.home.code)
    seen = await user_app.client(stranger).data(entity, reps)
    assert seen["_entities"] == [{"avatarUrl": urls["original"]}]
    await user_app.client(who).data(
        "mutation { updateProfile(input: {visibility: PRIVATE}) { visibility } }"
    )
    assert (await user_app.client(stranger).data(entity, reps))["_entities"] == [
        {"avatarUrl": None}
    ]
    assert (await user_app.client(who).data(entity, reps))["_entities"] == [
        {"avatarUrl": urls["original"]}
    ]


async def test_jpeg_orientation_is_applied_and_metadata_dropped(
    user_app: UserApp, territories: Territories
) -> None:
    who = await user_app.people.create(territories.home.code)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    exif[0x010E] = "secret description"
    data = image_bytes("JPEG", (400, 200), exif=exif.tobytes())
    status, body = await upload(user_app, who, data, "me.jpg", "image/jpeg")
    assert status == 200, body
    picture = Image.open(
        io.BytesIO((await fetch(user_app, body["data"]["uploadAvatar"]["original"])).content)
    )
    assert picture.size == (200, 400)  # upright
    assert not picture.getexif()
    assert (
        b"secret description"
        not in (await fetch(user_app, body["data"]["uploadAvatar"]["thumb"])).content
    )


async def test_webp_is_accepted(user_app: UserApp, territories: Territories) -> None:
    who = await user_app.people.create(territories.home.code)
    status, body = await upload(
        user_app, who, image_bytes("WEBP", (100, 100)), "x.webp", "image/webp"
    )
    assert status == 200, body
    picture = Image.open(
        io.BytesIO((await fetch(user_app, body["data"]["uploadAvatar"]["original"])).content)
    )
    assert picture.size == (100, 100)  # never enlarged


async def test_content_decides_not_the_name(user_app: UserApp, territories: Territories) -> None:
    who = await user_app.people.create(territories.home.code)
    for data in (
        b"GIF89a" + b"\x00" * 100,
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        image_bytes("GIF", (10, 10)),
    ):
        status, body = await upload(user_app, who, data, "innocent.png", "image/png")
        assert status == 200
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "file"}
    assert stored_files(user_app, who) == []


async def test_six_megabytes_are_refused_before_being_read(
    user_app: UserApp, territories: Territories
) -> None:
    who = await user_app.people.create(territories.home.code)
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * (6 * 1024 * 1024)
    status, body = await upload(user_app, who, data)
    assert status == 413
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "file"}
    assert stored_files(user_app, who) == []


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 16, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


async def test_decompression_bomb_is_refused(user_app: UserApp, territories: Territories) -> None:
    who = await user_app.people.create(territories.home.code)
    bomb = png_bomb(20000, 20000)
    assert len(bomb) < 100_000
    status, body = await upload(user_app, who, bomb)
    assert status == 200
    error = body["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "file"}
    assert "pixels" in error["message"]


async def test_replacing_removes_the_old_files_and_a_failed_upload_keeps_the_avatar(
    user_app: UserApp, territories: Territories
) -> None:
    who = await user_app.people.create(territories.home.code)
    _, first = await upload(user_app, who, image_bytes("PNG", (300, 300)))
    _, second = await upload(user_app, who, image_bytes("JPEG", (300, 300)), "b.jpg", "image/jpeg")
    old_url = first["data"]["uploadAvatar"]["medium"]
    new_url = second["data"]["uploadAvatar"]["medium"]
    assert old_url != new_url
    assert (await fetch(user_app, old_url)).status_code == 404
    assert (await fetch(user_app, new_url)).status_code == 200
    assert len(stored_files(user_app, who)) == 4
    _, failed = await upload(user_app, who, png_bomb(20000, 20000))
    assert failed["errors"]
    current = await user_app.client(who).data(CURRENT, {"id": who.id})
    assert current["profile"]["avatarUrl"] == new_url
    assert (await fetch(user_app, new_url)).status_code == 200


async def test_delete_avatar(user_app: UserApp, territories: Territories) -> None:
    who = await user_app.people.create(territories.home.code)
    _, body = await upload(user_app, who, image_bytes("PNG", (64, 64)))
    url = body["data"]["uploadAvatar"]["thumb"]
    client = user_app.client(who)
    assert (await client.data("mutation { deleteAvatar }"))["deleteAvatar"] is True
    assert (await client.data("mutation { deleteAvatar }"))["deleteAvatar"] is False
    assert (await client.data(CURRENT, {"id": who.id}))["profile"]["avatarUrl"] is None
    assert (await fetch(user_app, url)).status_code == 404
    assert stored_files(user_app, who) == []


async def test_image_endpoint_without_a_version_follows_the_profile(
    user_app: UserApp, territories: Territories
) -> None:
    who = await user_app.people.create(territories.home.code)
    stranger = await user_app.people.create(territories.home.code)
    _, body = await upload(user_app, who, image_bytes("PNG", (64, 64)))
    url = body["data"]["uploadAvatar"]["thumb"]
    current = url.split("?")[0].removeprefix("http://user.test")
    fresh = await user_app.http.get(current)
    assert fresh.status_code == 200
    assert fresh.headers["cache-control"].startswith("private, max-age=")
    assert fresh.content == (await fetch(user_app, url)).content
    again = await user_app.http.get(current, headers={"If-None-Match": fresh.headers["etag"]})
    assert again.status_code == 304
    await user_app.client(who).data(
        "mutation { updateProfile(input: {visibility: PRIVATE}) { visibility } }"
    )
    assert (await user_app.http.get(current)).status_code == 404
    as_stranger = {"Authorization": f"Bearer {stranger.token}"}
    assert (await user_app.http.get(current, headers=as_stranger)).status_code == 404
    as_owner = {"Authorization": f"Bearer {who.token}"}
    assert (await user_app.http.get(current, headers=as_owner)).status_code == 200
    for path in (
        current + "?v=" + "0" * 32,
        f"/avatars/{who.id}/huge?v=" + url.split("v=")[1],
        "/avatars/x/thumb?v=1",
        f"/avatars/{stranger.id}/thumb",
    ):
        assert (await fetch(user_app, path)).status_code == 404, path


async def test_uploads_are_rate_limited_per_user(
    user_settings: Settings, territories: Territories
) -> None:
    app = create_app(
        user_settings, run_outbox_relay=False, run_consumers=False, upload_limit=(2, 3600.0)
    )
    db = Database(user_settings.database)
    try:
        async with (
            running(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://user.test",
                auth=SignedAsRouter(user_settings),
            ) as http,
        ):
            limited = UserApp(
                http,
                People(user_settings, db),
                db,
                user_settings,
                Path(user_settings.user.avatar_storage_dir),
                app.state.user_runtime,
            )
            who = await limited.people.create(territories.home.code)
            other = await limited.people.create(territories.home.code)
            picture = image_bytes("PNG", (32, 32))
            for _ in range(2):
                assert "errors" not in (await upload(limited, who, picture))[1]
            _, refused = await upload(limited, who, picture)
            extensions = refused["errors"][0]["extensions"]
            assert extensions["code"] == "RATE_LIMITED"
            assert 0 < extensions["retryAfter"] <= 3600
            assert "errors" not in (await upload(limited, other, picture))[1]
    finally:
        await db.dispose()
