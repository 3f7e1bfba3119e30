"""A service's background loops (refilling a denylist, purging sessions): what keeps them
stoppable.

Such a loop catches `Exception` so that an outage does not end it. But some client libraries
turn a cancellation that lands in one of their calls into an error of their own; caught as a
failure, it would leave the loop running and the shutdown waiting for it forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger("unityplan.service")

# How long a shutdown waits for its background tasks once it cancelled them.
STOP_SECONDS = 5.0


def cancelled_meanwhile() -> bool:
    """Whether the running task was asked to stop (call it where the loop caught an error)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def stop_tasks(tasks: Iterable[asyncio.Task[None]], within: float = STOP_SECONDS) -> None:
    """Cancel `tasks` and wait for them, at most `within` seconds: a task that does not end
    by then is named in the log and left behind, never waited for forever."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if not pending:
        return
    _, still = await asyncio.wait(pending, timeout=within)
    for task in still:
        log.warning("background task %s did not stop within %.0f s", task.get_name(), within)
