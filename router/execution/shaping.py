"""Shaping the merged subgraph data into exactly the response the client's operation asks for.

Field order, aliases and `__typename` follow the operation; a null in a non-null position
nulls the nearest nullable parent, as GraphQL execution would. Each selection set is compiled
once per runtime type (and @skip/@include outcome) into flat field lists, so completing a
response is a tight loop over plain data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInterfaceType,
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
# What a (wrapped) output type holds.
_LEAF, _ENUM, _OBJECT, _ABSTRACT, _LIST = range(5)


class _TypeShape:
    """An output type compiled for completion: nullability, then a list, enum, object..."""

    __slots__ = ("enum_values", "item", "kind", "name", "non_null", "shape")

    def __init__(self, type_: GraphQLOutputType, shape: Shape | None) -> None:
        self.non_null = isinstance(type_, GraphQLNonNull)
        inner: Any = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        self.item: _TypeShape | None = None
        self.enum_values: frozenset[str] = frozenset()
        self.shape = shape
        self.name = getattr(inner, "name", "")
        if isinstance(inner, GraphQLList):
            self.kind = _LIST
            self.item = _TypeShape(inner.of_type, shape)
        elif isinstance(inner, GraphQLEnumType):
            self.kind = _ENUM
            self.enum_values = frozenset(inner.values)
        elif is_abstract_type(inner):
            self.kind = _ABSTRACT
        elif is_composite_type(inner):
            self.kind = _OBJECT
        else:
            self.kind = _LEAF


class _ShapeField:
    __slots__ = ("key", "mode", "name", "parent", "type")

    def __init__(
        self, key: str, name: str, parent: str, type_: _TypeShape | None, mode: int
    ) -> None:
        self.key = key
        self.name = name
        self.parent = parent
        self.type = type_
        self.mode = mode


def _mode(shape: _TypeShape) -> int:
    if shape.kind != _LEAF:
        return _GENERIC
    return _NON_NULL_LEAF if shape.non_null else _NULLABLE_LEAF


class Shape:
    """A selection set of the client's operation, compiled per runtime type on first use."""

    __slots__ = ("_by_type", "condition_variables", "schema", "selections")

    def __init__(self, schema: GraphQLSchema, selections: tuple[Selection, ...]) -> None:
        self.schema = schema
        self.selections = selections
        self.condition_variables = tuple(sorted(_condition_variables(selections)))
        self._by_type: dict[Any, list[_ShapeField]] = {}

    def fields(self, typename: str, variables: Mapping[str, Any]) -> list[_ShapeField]:
        key: Any = typename
        if self.condition_variables:
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
        assert isinstance(parent, GraphQLObjectType | GraphQLInterfaceType)
        found: list[_ShapeField] = []
        for key, occurrences in grouped.items():
            name = occurrences[0].name
            if name == "__typename":
                found.append(_ShapeField(key, name, typename, None, _TYPENAME))
                continue
            definition = parent.fields.get(name)
            if definition is None:  # __schema / __type, answered by introspection
                found.append(_ShapeField(key, name, typename, None, _PASSTHROUGH))
                continue
            shape = None
            if is_composite_type(get_named_type(definition.type)):
                shape = Shape(self.schema, tuple(s for o in occurrences for s in o.selections))
            compiled = _TypeShape(definition.type, shape)
            found.append(_ShapeField(key, name, typename, compiled, _mode(compiled)))
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
        # A root fetch that failed as a whole (its subgraph unreachable, say) is reported
        # without a path: the root fields it leaves empty need no error of their own.
        self.root_fetch_failed = any(not e.get("path") for e in errors)

    def root(self, shape: Shape, data: dict[str, Any], typename: str) -> dict[str, Any] | None:
        result = self.object(shape, data, typename, [])
        return None if result is _INVALID else result

    def object(self, shape: Shape, data: dict[str, Any], typename: str, path: list[Any]) -> Any:
        result: dict[str, Any] = {}
        for field in shape.fields(typename, self.variables):
            mode = field.mode
            key = field.key
            if mode in (_NULLABLE_LEAF, _PASSTHROUGH):
                result[key] = data.get(key)
                continue
            if mode == _TYPENAME:
                result[key] = typename
                continue
            value = data.get(key)
            if mode == _NON_NULL_LEAF and value is not None:
                result[key] = value
                continue
            path.append(key)
            completed = self.complete(field.type, value, field, path)  # type: ignore[arg-type]
            path.pop()
            if completed is _INVALID:
                return _INVALID
            result[key] = completed
        return result

    def complete(self, type_: _TypeShape, value: Any, field: _ShapeField, path: list[Any]) -> Any:
        """The completed value; _INVALID when a non-null position has no valid value."""
        if value is None:
            if type_.non_null:
                self._null_error(field, path)
                return _INVALID
            return None
        kind = type_.kind
        if kind == _LEAF:
            return value
        if kind == _LIST:
            completed = self._list(type_, value, field, path)
        elif kind == _OBJECT:
            if isinstance(value, dict):
                completed = self.object(type_.shape, value, type_.name, path)  # type: ignore[arg-type]
            else:
                completed = self._invalid(field, path, "an object was expected")
        elif kind == _ABSTRACT:
            completed = self._abstract(type_, value, field, path)
        elif isinstance(value, str) and value in type_.enum_values:
            return value
        else:
            completed = self._invalid(field, path, f"'{value}' is not a value of {type_.name}")
        if completed is _INVALID and not type_.non_null:
            return None
        return completed

    def _list(self, type_: _TypeShape, value: Any, field: _ShapeField, path: list[Any]) -> Any:
        if not isinstance(value, list):
            return self._invalid(field, path, "a list was expected")
        item = type_.item
        assert item is not None
        if item.kind == _LEAF and not item.non_null:
            return value
        items = []
        for index, element in enumerate(value):
            path.append(index)
            completed = self.complete(item, element, field, path)
            path.pop()
            if completed is _INVALID:
                return _INVALID
            items.append(completed)
        return items

    def _abstract(self, type_: _TypeShape, value: Any, field: _ShapeField, path: list[Any]) -> Any:
        if not isinstance(value, dict):
            return self._invalid(field, path, "an object was expected")
        typename = value.get("__typename")
        runtime = self.schema.get_type(typename) if isinstance(typename, str) else None
        if isinstance(runtime, GraphQLObjectType):
            return self.object(type_.shape, value, typename, path)  # type: ignore[arg-type]
        if typename == type_.name and isinstance(runtime, GraphQLInterfaceType):
            # Planned on the interface (from an `@interfaceObject`, whose objects answer with
            # the interface's name): only the interface's fields were asked for.
            return self.object(type_.shape, value, type_.name, path)  # type: ignore[arg-type]
        return self._invalid(field, path, "its runtime type is not part of the API")

    def _null_error(self, field: _ShapeField, path: list[Any]) -> None:
        here = tuple(path)
        if any(here[: len(p)] == p or p[: len(here)] == here for p in self.error_paths):
            return  # the subgraph already reported why this value is missing
        if len(here) == 1 and self.root_fetch_failed:
            return
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
