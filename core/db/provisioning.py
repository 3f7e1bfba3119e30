"""Territory provisioning: registry row, schema on its pod and its migrations, in one step.

Safe to re-run: an existing territory keeps its pod, type and parent, gets its descriptive fields
updated and its schema migrated to the newest revision.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from core.config import Settings
from core.db.database import Database
from core.db.migrations import upgrade_territory_schema
from core.db.registry import territories, territory_from_row
from core.db.territories import Territory, TerritoryType, validate_territory_code
from core.errors import BadUserInput, Conflict


async def create_territory(
    settings: Settings,
    db: Database,
    *,
    code: str,
    name: str,
    type: TerritoryType | str,
    parent_code: str | None = None,
    pod_id: str | None = None,
    timezone: str | None = None,
    locale: str | None = None,
    default_language: str | None = None,
) -> Territory:
    """Register the territory, create and migrate its schema on its pod; return the registry row."""
    code = validate_territory_code(code)
    territory_type = _territory_type(type)
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise BadUserInput("A territory needs a name", field="name")
    existing = await _registered(db, code)
    # Re-running without --pod keeps the territory where it is.
    pod = pod_id or (existing.pod_id if existing else settings.database.default_pod)
    if pod not in db.pods:
        raise BadUserInput(f"Unknown pod {pod!r}", field="podId")
    if territory_type is TerritoryType.COMMUNITY:
        if parent_code is None:
            raise BadUserInput("A community belongs to a parent territory", field="parentCode")
        await _require_parent(db, code, parent_code)
    elif parent_code is not None:
        raise BadUserInput(
            "Countries and First Nations have no parent territory", field="parentCode"
        )

    if existing is not None:
        _require_same_placement(existing, territory_type, parent_code, pod)

    # Schema first, registry row second: the territory only becomes routable once its schema is
    # complete, and a failed run leaves nothing that a re-run does not finish.
    await upgrade_territory_schema(settings, pod, code)

    descriptive = {
        "name": name,
        "timezone": timezone,
        "locale": locale,
        "default_language": default_language,
    }
    statement = (
        insert(territories)
        .values(
            code=code,
            type=territory_type.value,
            parent_territory_code=parent_code,
            pod_id=pod,
            **descriptive,
        )
        .on_conflict_do_update(
            index_elements=[territories.c.code],
            set_={key: value for key, value in descriptive.items() if value is not None},
        )
        .returning(*territories.c)
    )
    async with db.global_session() as session:
        row = (await session.execute(statement)).one()
    db.invalidate_territories()
    created = territory_from_row(row)
    # A concurrent creation may have won the insert with other placement.
    _require_same_placement(created, territory_type, parent_code, pod)
    return created


def _territory_type(value: TerritoryType | str) -> TerritoryType:
    try:
        return TerritoryType(value)
    except ValueError:
        raise BadUserInput(
            "Territory type is country, first_nation or community", field="type"
        ) from None


async def _registered(db: Database, code: str) -> Territory | None:
    async with db.global_session() as session:
        row = (await session.execute(select(territories).where(territories.c.code == code))).first()
    return territory_from_row(row) if row is not None else None


async def _require_parent(db: Database, code: str, parent_code: str) -> None:
    if not isinstance(parent_code, str):
        raise BadUserInput("Unknown parent territory", field="parentCode")
    try:
        validate_territory_code(parent_code)
    except BadUserInput:
        raise BadUserInput("Unknown parent territory", field="parentCode") from None
    if parent_code == code or await _registered(db, parent_code) is None:
        raise BadUserInput("Unknown parent territory", field="parentCode")


def _require_same_placement(
    existing: Territory, territory_type: TerritoryType, parent_code: str | None, pod: str
) -> None:
    """A re-run may rename a territory but never move it: its data lives on its pod."""
    if (existing.type, existing.parent_code, existing.pod_id) != (territory_type, parent_code, pod):
        raise Conflict(
            f"Territory {existing.code!r} already exists as a {existing.type.value} on pod "
            f"{existing.pod_id!r}"
            + (f" under {existing.parent_code!r}" if existing.parent_code else ""),
            field="territoryCode",
        )
