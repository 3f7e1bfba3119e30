"""Database access: one async engine per pod, sessions bound to a territory's pod and schema."""

from core.db.database import Database
from core.db.territories import (
    GLOBAL_SCHEMA,
    TERRITORY_CODE_PATTERN,
    Territory,
    TerritoryType,
    schema_for,
    validate_territory_code,
)

__all__ = [
    "GLOBAL_SCHEMA",
    "TERRITORY_CODE_PATTERN",
    "Database",
    "Territory",
    "TerritoryType",
    "schema_for",
    "validate_territory_code",
]
