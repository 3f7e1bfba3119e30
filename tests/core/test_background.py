"""Background loops stop when the service does, even when a client library turned the
cancellation into an error of its own."""

from __future__ import annotations

import asyncio
import logging

import pytest

from core.background import cancelled_meanwhile, stop_tasks


async def _call_that_turns_cancellation_into_an_error() -> None:
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        raise ConnectionError("connection lost") from None  # as some clients do


async def test_a_loop_whose_cancellation_became_an_error_still_stops() -> None:
    calls = 0

    async def loop() -> None:
        nonlocal calls
        while True:
            try:
                calls += 1
                await _call_that_turns_cancellation_into_an_error()
            except Exception as exc:  # an outage must not end the loop
                if cancelled_meanwhile():
                    raise asyncio.CancelledError from exc
            await asyncio.sleep(0.01)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.05)
    await stop_tasks([task], within=2)
    assert task.cancelled()
    assert calls == 1


async def test_a_task_that_does_not_stop_is_named_and_not_waited_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue  # swallowed: only `release` ends it

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="unityplan.service"):
        async with asyncio.timeout(5):
            await stop_tasks([task], within=0.1)
    assert not task.done()
    assert "background task stubborn did not stop" in caplog.text
    release.set()
    task.cancel()
    await asyncio.wait([task], timeout=2)
    assert task.done()
