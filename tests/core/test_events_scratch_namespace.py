"""Scratch namespaces (test runs, benchmarks) remove exactly their own streams."""

from __future__ import annotations

import secrets

import nats
import pytest

from core.config import Settings
from core.events import Namespace, delete_namespace_streams, drop_scratch_namespace
from core.events.streams import ensure_streams, stream_specs


async def test_only_the_namespace_streams_are_deleted(settings: Settings) -> None:
    mine = f"scratch{secrets.token_hex(3)}"
    other = f"scratch{secrets.token_hex(3)}"
    client = await nats.connect(settings.nats.url)
    try:
        js = client.jetstream()
        for namespace in (mine, other):
            scoped = settings.replace(EVENTS_NAMESPACE=namespace)
            await ensure_streams(js, stream_specs(scoped.nats, ["dk"]))
        deleted = await drop_scratch_namespace(settings.nats.url, mine)
        assert sorted(deleted) == sorted(
            Namespace(mine).stream(base)
            for base in ("GLOBAL_EVENTS", "CROSS_TERRITORY", "REALTIME", "TERRITORY_DK")
        )
        names = {info.config.name for info in await js.streams_info()}
        assert not any(name and name.startswith(mine.upper() + "_") for name in names)
        assert Namespace(other).stream("GLOBAL_EVENTS") in names
        await delete_namespace_streams(js, Namespace(other))
        with pytest.raises(ValueError, match="named namespace"):
            await delete_namespace_streams(js, Namespace(""))
    finally:
        await client.close()
