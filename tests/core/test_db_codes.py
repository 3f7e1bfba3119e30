"""Territory codes: only validated codes ever become schema names."""

from __future__ import annotations

import re

import pytest

from core.db import TERRITORY_CODE_PATTERN, schema_for, validate_territory_code
from core.db.territories import MAX_TERRITORY_CODE_LENGTH, is_territory_schema
from core.errors import BadUserInput, ErrorCode

MALICIOUS_CODES = [
    "dk; drop schema",
    "../x",
    "DK",
    "d" * 200,
    "",
    "x",
    "dk\n",
    "dk'--",
    'dk"',
    "1dk",
    "-dk",
    "dk_copenhagen",
    "dk copenhagen",
    "dk\x00",
    "dæ",
]


@pytest.mark.parametrize("code", MALICIOUS_CODES)
def test_invalid_codes_are_bad_user_input(code: str) -> None:
    with pytest.raises(BadUserInput) as raised:
        validate_territory_code(code)
    assert raised.value.code is ErrorCode.BAD_USER_INPUT
    assert raised.value.extensions == {"field": "territoryCode"}
    with pytest.raises(BadUserInput):
        schema_for(code)


def test_non_strings_are_rejected() -> None:
    with pytest.raises(BadUserInput):
        validate_territory_code(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "schema"),
    [
        ("dk", "territory_dk"),
        ("haida-fn-ca", "territory_haida_fn_ca"),
        ("dk-copenhagen", "territory_dk_copenhagen"),
        ("a1", "territory_a1"),
    ],
)
def test_schema_names(code: str, schema: str) -> None:
    assert validate_territory_code(code) == code
    assert schema_for(code) == schema
    assert is_territory_schema(schema)


def test_schema_names_fit_postgres_identifiers() -> None:
    longest = "a" * MAX_TERRITORY_CODE_LENGTH
    assert len(schema_for(longest)) == 63
    # The pattern alone allows this one, but its schema name would be truncated (a collision).
    too_long = "a" * (MAX_TERRITORY_CODE_LENGTH + 1)
    assert re.fullmatch(TERRITORY_CODE_PATTERN, too_long)
    with pytest.raises(BadUserInput):
        schema_for(too_long)


@pytest.mark.parametrize("schema", ["public", "global", "territory_DK", "territory_", "pg_catalog"])
def test_foreign_schemas_are_not_territory_schemas(schema: str) -> None:
    assert not is_territory_schema(schema)
