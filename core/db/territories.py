"""Territory codes, the schema each territory's data lives in, and the registry entry type.

A territory code is the only user input that ever decides a schema, so it is validated here,
before it comes near SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.errors import BadUserInput

TERRITORY_CODE_PATTERN = r"^[a-z][a-z0-9-]{1,62}$"
GLOBAL_SCHEMA = "global"
TERRITORY_SCHEMA_PREFIX = "territory_"

# PostgreSQL silently truncates identifiers to 63 bytes, so two long codes could share one
# schema. The pattern alone allows 63 characters; the schema name sets the real limit.
POSTGRES_IDENTIFIER_MAX = 63
MAX_TERRITORY_CODE_LENGTH = POSTGRES_IDENTIFIER_MAX - len(TERRITORY_SCHEMA_PREFIX)

_CODE = re.compile(TERRITORY_CODE_PATTERN)


class TerritoryType(StrEnum):
    COUNTRY = "country"
    FIRST_NATION = "first_nation"
    COMMUNITY = "community"


def validate_territory_code(code: str) -> str:
    """`code` if it is a valid territory code, else `BadUserInput(field="territoryCode")`."""
    if (
        not isinstance(code, str)
        or len(code) > MAX_TERRITORY_CODE_LENGTH
        or _CODE.fullmatch(code) is None
    ):
        raise BadUserInput(
            "Territory codes are 2 to "
            f"{MAX_TERRITORY_CODE_LENGTH} lower-case letters, digits or hyphens, "
            "starting with a letter",
            field="territoryCode",
        )
    return code


def schema_for(code: str) -> str:
    """The PostgreSQL schema holding the territory's data: `territory_<code>`, `-` as `_`."""
    return TERRITORY_SCHEMA_PREFIX + validate_territory_code(code).replace("-", "_")


def territory_code_of(schema: str) -> str | None:
    """The territory code whose schema `schema` is (`schema_for` reversed), or None."""
    if not schema.startswith(TERRITORY_SCHEMA_PREFIX):
        return None
    code = schema[len(TERRITORY_SCHEMA_PREFIX) :].replace("_", "-")
    try:
        return validate_territory_code(code)
    except BadUserInput:
        return None


def is_territory_schema(schema: str) -> bool:
    """Whether `schema` is a name `schema_for` can produce."""
    return territory_code_of(schema) is not None


@dataclass(frozen=True)
class Territory:
    """One row of the `global.territories` registry."""

    code: str
    name: str
    type: TerritoryType
    parent_code: str | None
    pod_id: str
    timezone: str | None
    locale: str | None
    default_language: str | None
    metadata: dict[str, Any] = field(hash=False)
    is_active: bool
    created_at: datetime

    @property
    def schema(self) -> str:
        return schema_for(self.code)
