"""Shaping the merged subgraph data into exactly the response the client's operation asks for.

Field order, aliases and `__typename` follow the operation; a null in a non-null position
nulls the nearest nullable parent, as GraphQL execution would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    get_named_type,
    is_abstract_type,
    is_composite_type,
)

from router.planning.operation import Field, Fragment, Selection

_INVALID: Any = object()

# How a field is completed: the common leaf cases skip the generic path.
_NULLABLE_LEAF, _NON_NULL_LEAF, _GENERIC, _TYPENAME, _PASSTHROUGH = range(5)


class _ShapeField:
    __slots__ = ("key", "mode", "name", "parent", "shape", "type")

    def __init__(
        self,
        key: str,
        name: str,
        parent: str,
        type_: GraphQLOutputType | None,
        shape: Shape | None,
        mode: int,
    ) -> None:
        self.key = key
        self.name = name
        self.parent = parent
        self.type = type_
        self.shape = shape
        self.mode = mode


def _leaf_mode(type_: GraphQLOutputType) -> int:
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(inner, GraphQLList | GraphQLEnumType) or is_composite_type(inner):
        return _GENERIC
    return _NON_NULL_LEAF if isinstance(type_, GraphQLNonNull) else _NULLABLE_LEAF


class Shape:
    """A selection set of the client's operation, compiled per runtime type on first use."""

    __slots__ = ("_by_type", "condition_variables", "schema", "selections")

    def __init__(self, schema: GraphQLSchema, selections: tuple[Selection, ...]) -> None:
        self.schema = schema
        self.selections = selections
        self.condition_variables = tuple(sorted(_condition_variables(selections)))
        self._by_type: dict[tuple[str, tuple[bool, ...]], list[_ShapeField]] = {}

    def fields(self, typename: str, variables: Mapping[str, Any]) -> list[_ShapeField]:
        key = (typename, tuple(bool(variables.get(v)) for v in self.condition_variables))
        found = self._by_type.get(key)
        if found is None:
            found = self._by_type[key] = self._collect(typename, variables)
        return found

    def _applies(self, type_condition: str | None, typename: str) -> bool:
        if type_condition is None or type_condition == typename:
            return True
        condition = self.schema.get_type(type_condition)
        runtime = self.schema.get_type(typename)
        return (
            is_abstract_type(condition)
            and isinstance(runtime, GraphQLObjectType)
            and self.schema.is_sub_type(condition, runtime)
        )

    def _collect(self, typename: str, variables: Mapping[str, Any]) -> list[_ShapeField]:
        grouped: dict[str, list[Field]] = {}

        def visit(selections: tuple[Selection, ...]) -> None:
            for selection in selections:
                if not all(bool(variables.get(v)) == wanted for v, wanted in selection.conditions):
                    continue
                if isinstance(selection, Fragment):
                    if self._applies(selection.type_condition, typename):
                        visit(selection.selections)
                else:
                    grouped.setdefault(selection.response_key, []).append(selection)

        visit(self.selections)
        parent = self.schema.get_type(typename)
        assert isinstance(parent, GraphQLObjectType)
        found: list[_ShapeField] = []
        for key, occurrences in grouped.items():
            name = occurrences[0].name
            if name == "__typename":
                found.append(_ShapeField(key, name, typename, None, None, _TYPENAME))
                continue
            definition = parent.fields.get(name)
            if definition is None:  # __schema / __type, answered by introspection
                found.append(_ShapeField(key, name, typename, None, None, _PASSTHROUGH))
                continue
            shape = None
            if is_composite_type(get_named_type(definition.type)):
                merged = tuple(s for o in occurrences for s in o.selections)
                shape = Shape(self.schema, merged)
            found.append(
                _ShapeField(
                    key, name, typename, definition.type, shape, _leaf_mode(definition.type)
                )
            )
        return found


def _condition_variables(selections: tuple[Selection, ...]) -> set[str]:
    names: set[str] = set()
    for selection in selections:
        names.update(v for v, _ in selection.conditions)
        if isinstance(selection, Fragment):
            names |= _condition_variables(selection.selections)
    return names


class Shaper:
    """Completes one response; collects the errors it finds (non-null violations)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        variables: Mapping[str, Any],
        errors: list[dict[str, Any]],
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.errors = errors
        self.error_paths = {tuple(e["path"]) for e in errors if e.get("path")}

    def root(self, shape: Shape, data: dict[str, Any], typename: str) -> dict[str, Any] | None:
        result = self.object(shape, data, typename, [])
        return None if result is _INVALID else result

    def object(self, shape: Shape, data: dict[str, Any], typename: str, path: list[Any]) -> Any:
        result: dict[str, Any] = {}
        for field in shape.fields(typename, self.variables):
            mode = field.mode
            if mode == _NULLABLE_LEAF:
                result[field.key] = data.get(field.key)
                continue
            if mode == _TYPENAME:
                result[field.key] = typename
                continue
            if mode == _PASSTHROUGH:
                result[field.key] = data.get(field.key)
                continue
            value = data.get(field.key)
            if mode == _NON_NULL_LEAF and value is not None:
                result[field.key] = value
                continue
            path.append(field.key)
            completed = self.value(field.type, value, field, path)  # type: ignore[arg-type]
            path.pop()
            if completed is _INVALID:
                return _INVALID
            result[field.key] = completed
        return result

    def value(
        self, type_: GraphQLOutputType, value: Any, field: _ShapeField, path: list[Any]
    ) -> Any:
        if isinstance(type_, GraphQLNonNull):
            if value is None:
                self._null_error(field, path)
                return _INVALID
            return self._inner(type_.of_type, value, field, path)
        if value is None:
            return None
        completed = self._inner(type_, value, field, path)
        return None if completed is _INVALID else completed

    def _inner(self, type_: Any, value: Any, field: _ShapeField, path: list[Any]) -> Any:
        if isinstance(type_, GraphQLList):
            if not isinstance(value, list):
                return self._invalid(field, path, "a list was expected")
            items = []
            for index, item in enumerate(value):
                path.append(index)
                completed = self.value(type_.of_type, item, field, path)
                path.pop()
                if completed is _INVALID:
                    return _INVALID
                items.append(completed)
            return items
        if isinstance(type_, GraphQLEnumType):
            if value not in type_.values:
                return self._invalid(field, path, f"'{value}' is not a value of enum {type_.name}")
            return value
        if not is_composite_type(type_):
            return value
        if not isinstance(value, dict):
            return self._invalid(field, path, "an object was expected")
        typename = value.get("__typename") if is_abstract_type(type_) else type_.name
        runtime = self.schema.get_type(typename) if isinstance(typename, str) else None
        if not isinstance(runtime, GraphQLObjectType):
            return self._invalid(field, path, "its runtime type is not part of the API")
        assert field.shape is not None
        return self.object(field.shape, value, typename, path)  # type: ignore[arg-type]

    def _null_error(self, field: _ShapeField, path: list[Any]) -> None:
        here = tuple(path)
        if any(here[: len(p)] == p or p[: len(here)] == here for p in self.error_paths):
            return  # the subgraph already reported why this value is missing
        self.errors.append(
            {
                "message": (
                    f"Cannot return null for non-nullable field {field.parent}.{field.name}."
                ),
                "path": list(path),
                "extensions": {"code": "INVALID_NULL"},
            }
        )
        self.error_paths.add(here)

    def _invalid(self, field: _ShapeField, path: list[Any], why: str) -> Any:
        self.errors.append(
            {
                "message": f"Invalid value for {field.parent}.{field.name}: {why}.",
                "path": list(path),
                "extensions": {"code": "SUBGRAPH_INVALID_RESPONSE"},
            }
        )
        self.error_paths.add(tuple(path))
        return _INVALID
