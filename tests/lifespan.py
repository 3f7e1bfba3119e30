"""An app's lifespan for module fixtures: entered and left in one task of its own (a module
fixture's set-up and tear-down run in different tasks, which the lifespan's task group does
not allow), with a bounded shut-down."""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar

# An app's shut-down hooks finish in well under a second; past this, something hangs.
SHUTDOWN_SECONDS = 60.0


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[None]:
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(hold())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # start-up failed: raise its error here
    try:
        yield
    finally:
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=SHUTDOWN_SECONDS)
        if not done:
            # A hung shut-down must not hang the suite: say where every task waits, then go on.
            print(f"{app!r} did not shut down in {SHUTDOWN_SECONDS} s; tasks:", file=sys.stderr)
            for pending in asyncio.all_tasks():
                pending.print_stack(file=sys.stderr)
            warnings.warn("an app's shut-down hung and was cancelled", stacklevel=1)
            task.cancel()
            await asyncio.wait({task}, timeout=5)
