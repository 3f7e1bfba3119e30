"""The demo data of `unityplan dev`: every migration, the territory `dk`, and what the services'
bootstrap hooks (in the registry) add: the auth subgraph's platform admin and invitation.

All steps are idempotent, so the second run of `make dev` finds and keeps the first run's data.
"""

from __future__ import annotations

import dataclasses

from core.config import Settings
from unityplan.registry import SERVICES

DEMO_TERRITORY: dict[str, str] = {
    "code": "dk",
    "name": "Denmark",
    "type": "country",
    "timezone": "Europe/Copenhagen",
    "locale": "da_DK",
    "default_language": "da",
}


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


async def bootstrap(settings: Settings) -> list[str] | None:
    """Run every service's bootstrap hook, in the registry's order (the auth subgraph's creates
    the platform admin and an invitation): lines describing what they made (None: no hooks)."""
    hooks = [service.bootstrap for service in SERVICES if service.bootstrap is not None]
    if not hooks:
        return None
    lines: list[str] = []
    for hook in hooks:
        lines.extend(describe(await hook(settings)))
    return lines


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
