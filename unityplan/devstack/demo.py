"""The demo data of `unityplan dev`: every migration, the territory `dk`, and the bootstrap admin.

All steps are idempotent, so the second run of `make dev` finds and keeps the first run's data.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Awaitable, Callable
from typing import Any

from core.config import Settings

DEMO_TERRITORY: dict[str, str] = {
    "code": "dk",
    "name": "Denmark",
    "type": "country",
    "timezone": "Europe/Copenhagen",
    "locale": "da_DK",
    "default_language": "da",
}
BOOTSTRAP_MODULE = "subgraphs.auth.bootstrap"


async def migrate_and_provision(settings: Settings) -> None:
    """Upgrade `global` and every territory, then make sure the demo territory exists."""
    from core.db.database import Database
    from core.db.migrations import migrate_all
    from core.db.provisioning import create_territory
    from core.db.territories import TerritoryType

    await migrate_all(settings)
    db = Database(settings.database)
    try:
        await create_territory(
            settings,
            db,
            code=DEMO_TERRITORY["code"],
            name=DEMO_TERRITORY["name"],
            type=TerritoryType(DEMO_TERRITORY["type"]),
            timezone=DEMO_TERRITORY["timezone"],
            locale=DEMO_TERRITORY["locale"],
            default_language=DEMO_TERRITORY["default_language"],
        )
    finally:
        await db.dispose()


def _bootstrap_function() -> Callable[[Settings], Awaitable[Any]] | None:
    """`bootstrap_demo` of the auth subgraph, once that subgraph provides one."""
    try:
        module = importlib.import_module(BOOTSTRAP_MODULE)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == BOOTSTRAP_MODULE or BOOTSTRAP_MODULE.startswith(missing + "."):
            return None
        raise  # the module exists but one of its own imports is broken: say so
    function: Callable[[Settings], Awaitable[Any]] | None = getattr(module, "bootstrap_demo", None)
    return function


async def bootstrap(settings: Settings) -> list[str] | None:
    """Create the platform admin and an invitation: lines describing them (None: not available)."""
    function = _bootstrap_function()
    if function is None:
        return None
    return describe(await function(settings))


def describe(result: object) -> list[str]:
    """Readable lines for a bootstrap result: its own `summary()`, else `label: value` lines (a
    dataclass, a mapping or anything)."""
    summary = getattr(result, "summary", None)
    if callable(summary):
        return [str(line) for line in summary()]
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        items = dataclasses.asdict(result).items()
    elif isinstance(result, dict):
        items = result.items()
    else:
        return [str(result)]
    return [f"{str(key).replace('_', ' ')}: {value}" for key, value in items if value is not None]
