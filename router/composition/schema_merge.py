"""Merging subgraph schemas into one supergraph, collecting every composition error."""

from __future__ import annotations

import re
from typing import Any

from graphql import GraphQLSyntaxError
from graphql.language import (
    BooleanValueNode,
    ConstDirectiveNode,
    EnumTypeDefinitionNode,
    EnumTypeExtensionNode,
    InputObjectTypeDefinitionNode,
    InputObjectTypeExtensionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    ScalarTypeDefinitionNode,
    ScalarTypeExtensionNode,
    StringValueNode,
    TypeExtensionNode,
    UnionTypeDefinitionNode,
    UnionTypeExtensionNode,
    print_ast,
)

from router.composition.subgraph import SubgraphSchema
from router.composition.types import (
    FieldJoin,
    MergedArgument,
    MergedEnumValue,
    MergedField,
    MergedType,
    TypeJoin,
    merge_type_refs,
    named_type,
)
from router.supergraph.fieldsets import parse_field_set
from router.supergraph.model import SupergraphError

_KINDS: dict[type, str] = {
    ObjectTypeDefinitionNode: "object",
    ObjectTypeExtensionNode: "object",
    InterfaceTypeDefinitionNode: "interface",
    InterfaceTypeExtensionNode: "interface",
    UnionTypeDefinitionNode: "union",
    UnionTypeExtensionNode: "union",
    EnumTypeDefinitionNode: "enum",
    EnumTypeExtensionNode: "enum",
    InputObjectTypeDefinitionNode: "input",
    InputObjectTypeExtensionNode: "input",
    ScalarTypeDefinitionNode: "scalar",
    ScalarTypeExtensionNode: "scalar",
}
_ROOT_NAMES = {"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}


def _argument(directive: ConstDirectiveNode, name: str) -> Any:
    for argument in directive.arguments or ():
        if argument.name.value == name:
            return argument.value
    return None


def _string(directive: ConstDirectiveNode, name: str) -> str | None:
    value = _argument(directive, name)
    return value.value if isinstance(value, StringValueNode) else None


def _description(node: Any) -> str | None:
    description = getattr(node, "description", None)
    return description.value if description is not None else None


def _deprecated(node: Any) -> str | None:
    for directive in getattr(node, "directives", None) or ():
        if directive.name.value == "deprecated":
            return print_ast(directive)
    return None


class Composer:
    """Merges subgraphs in order; `errors` names subgraph, type and field of every problem."""

    def __init__(self, subgraphs: list[SubgraphSchema]) -> None:
        self.subgraphs = subgraphs
        self.types: dict[str, MergedType] = {}
        self.errors: list[str] = []
        self.uses_inaccessible = False
        self.uses_tag = False
        self.uses_context = False

    def _rename(self, subgraph: SubgraphSchema) -> dict[str, str]:
        return {local: _ROOT_NAMES[op] for op, local in subgraph.roots.items()}

    def _type_ref(self, node: Any, renames: dict[str, str]) -> str:
        text = print_ast(node)
        name = named_type(text)
        return text.replace(name, renames[name]) if name in renames else text

    def _marks(self, subgraph: SubgraphSchema, node: Any, target: Any) -> None:
        if subgraph.has(node, "inaccessible"):
            target.inaccessible = True
            self.uses_inaccessible = True
        for tag in subgraph.directive(node, "tag"):
            name = _string(tag, "name")
            if name and name not in target.tags:
                target.tags.append(name)
                self.uses_tag = True

    def compose(self) -> dict[str, MergedType]:
        for subgraph in self.subgraphs:
            renames = self._rename(subgraph)
            for local_name, nodes in subgraph.types.items():
                self._add_type(subgraph, renames.get(local_name, local_name), nodes, renames)
        # Every subgraph serves the query root (at least `_entities` and `_service`).
        query = self.types.get("Query")
        if query is not None:
            for subgraph in self.subgraphs:
                query.joins.setdefault(subgraph.name, TypeJoin())
        self._finish_arguments()
        self._spread_interface_object_fields()
        self._merge_enums()
        self._check_shareability()
        self._check_field_sets()
        return self.types

    def _add_type(
        self, subgraph: SubgraphSchema, name: str, nodes: list[Any], renames: dict[str, str]
    ) -> None:
        kind = _KINDS[type(nodes[0])]
        interface_object = any(subgraph.has(n, "interfaceObject") for n in nodes)
        merged = self.types.get(name)
        if merged is None:
            merged = self.types[name] = MergedType(name, "interface" if interface_object else kind)
        effective = "interface" if interface_object else kind
        if merged.kind != effective:
            self.errors.append(
                f'[{subgraph.name}] Type "{name}" is a {kind} here but a {merged.kind} elsewhere'
            )
            return
        join = merged.joins.setdefault(subgraph.name, TypeJoin())
        join.interface_object = interface_object
        join.extension = all(isinstance(n, TypeExtensionNode) for n in nodes) or any(
            subgraph.has(n, "extends") for n in nodes
        )
        type_shareable = not subgraph.federation_2 or any(
            subgraph.has(n, "shareable") for n in nodes
        )
        for node in nodes:
            merged.description = merged.description or _description(node)
            self._marks(subgraph, node, merged)
            for key in subgraph.directive(node, "key"):
                fields = _string(key, "fields") or ""
                resolvable = _argument(key, "resolvable")
                join.keys.append(
                    (
                        fields,
                        not (isinstance(resolvable, BooleanValueNode) and not resolvable.value),
                    )
                )
            for context in subgraph.directive(node, "context"):
                # Contexts are per subgraph; the supergraph name says which.
                local = _string(context, "name") or ""
                merged.contexts.append(f"{subgraph.name}__{local}")
                self.uses_context = True
            for directive in node.directives or ():
                if directive.name.value == "specifiedBy":
                    merged.specified_by = _string(directive, "url")
            for interface in getattr(node, "interfaces", None) or ():
                merged.implements.setdefault(interface.name.value, []).append(subgraph.name)
            for member in getattr(node, "types", None) or ():
                member_name = renames.get(member.name.value, member.name.value)
                merged.members.setdefault(member_name, []).append(subgraph.name)
            for value in getattr(node, "values", None) or ():
                entry = merged.values.setdefault(
                    value.name.value, MergedEnumValue(value.name.value)
                )
                entry.subgraphs.append(subgraph.name)
                entry.description = entry.description or _description(value)
                entry.deprecated = entry.deprecated or _deprecated(value)
                self._marks(subgraph, value, entry)
            key_fields = {
                item.name
                for fields, _ in join.keys
                for item in self._field_set(subgraph, name, fields)
            }
            type_external = subgraph.has(node, "external")
            for field_node in getattr(node, "fields", None) or ():
                self._add_field(
                    subgraph,
                    merged,
                    field_node,
                    renames,
                    shareable=type_shareable or field_node.name.value in key_fields,
                    external=type_external,
                )

    def _field_set(self, subgraph: SubgraphSchema, type_name: str, text: str) -> tuple[Any, ...]:
        try:
            return parse_field_set(text)
        except SupergraphError:
            self.errors.append(
                f'[{subgraph.name}] Invalid field set "{text}" on type "{type_name}"'
            )
            return ()

    def _add_field(
        self,
        subgraph: SubgraphSchema,
        merged: MergedType,
        node: Any,
        renames: dict[str, str],
        *,
        shareable: bool,
        external: bool,
    ) -> None:
        name = node.name.value
        if merged.name == "Query" and name in {"_entities", "_service"}:
            return
        type_ref = self._type_ref(node.type, renames)
        output = merged.kind != "input"
        found = merged.fields.get(name)
        if found is None:
            found = merged.fields[name] = MergedField(name, type_ref)
        else:
            combined = merge_type_refs(found.type, type_ref, output=output)
            if combined is None:
                self.errors.append(
                    f'[{subgraph.name}] Field "{merged.name}.{name}" has type "{type_ref}" here '
                    f'but "{found.type}" in another subgraph'
                )
                return
            found.type = combined
        found.description = found.description or _description(node)
        found.deprecated = found.deprecated or _deprecated(node)
        if getattr(node, "default_value", None) is not None:
            found.default = found.default or print_ast(node.default_value)
        self._marks(subgraph, node, found)
        join = FieldJoin(
            external=external or subgraph.has(node, "external"),
            type=type_ref,
            shareable=shareable or subgraph.has(node, "shareable"),
        )
        for directive in subgraph.directive(node, "requires"):
            join.requires = _string(directive, "fields")
        for directive in subgraph.directive(node, "provides"):
            join.provides = _string(directive, "fields")
        for directive in subgraph.directive(node, "override"):
            join.override = _string(directive, "from")
            join.override_label = _string(directive, "label")
        found.sources[subgraph.name] = join
        for argument in getattr(node, "arguments", None) or ():
            arg_type = self._type_ref(argument.type, renames)
            from_context = subgraph.directive(argument, "fromContext")
            if from_context:
                # Filled by the router from an ancestor: not an argument clients see.
                self._context_argument(
                    subgraph, merged, name, argument, arg_type, from_context[0], join
                )
                continue
            entry = found.arguments.get(argument.name.value)
            default = print_ast(argument.default_value) if argument.default_value else None
            if entry is None:
                entry = found.arguments[argument.name.value] = MergedArgument(
                    argument.name.value, arg_type, default, _description(argument)
                )
            else:
                combined = merge_type_refs(entry.type, arg_type, output=False)
                if combined is None:
                    self.errors.append(
                        f'[{subgraph.name}] Argument "{merged.name}.{name}'
                        f'({argument.name.value}:)" '
                        f'has type "{arg_type}" here but "{entry.type}" in another subgraph'
                    )
                    continue
                entry.type = combined
                entry.default = entry.default or default
            entry.subgraphs.add(subgraph.name)
            self._marks(subgraph, argument, entry)

    def _context_argument(
        self,
        subgraph: SubgraphSchema,
        merged: MergedType,
        field_name: str,
        argument: Any,
        arg_type: str,
        directive: ConstDirectiveNode,
        join: FieldJoin,
    ) -> None:
        match = re.match(r"^\s*\$(\w+)\s*(.*)$", _string(directive, "field") or "", re.S)
        if match is None or not match.group(2).strip():
            self.errors.append(
                f'[{subgraph.name}] "{merged.name}.{field_name}({argument.name.value}:)": '
                '@fromContext(field:) must be "$context { selection }"'
            )
            return
        selection = match.group(2).strip()
        if not selection.startswith("{"):
            selection = "{ " + selection + " }"
        join.context_arguments.append(
            (argument.name.value, arg_type, f"{subgraph.name}__{match.group(1)}", selection)
        )
        self.uses_context = True

    def _finish_arguments(self) -> None:
        """Arguments are the intersection over the subgraphs that define the field."""
        for merged in self.types.values():
            for field in merged.fields.values():
                defining = set(field.sources)
                for name, argument in list(field.arguments.items()):
                    if argument.subgraphs != defining:
                        if argument.type.endswith("!") and argument.default is None:
                            self.errors.append(
                                f'Required argument "{merged.name}.{field.name}({name}:)" is not '
                                f"defined in every subgraph that defines the field"
                            )
                        del field.arguments[name]
            if merged.kind == "input":
                every = set(merged.joins)
                for name, field in list(merged.fields.items()):
                    if set(field.sources) != every:
                        if field.type.endswith("!") and field.default is None:
                            self.errors.append(
                                f'Required input field "{merged.name}.{name}" is not defined in '
                                f"every subgraph that defines the input type"
                            )
                        del merged.fields[name]

    def _spread_interface_object_fields(self) -> None:
        """Fields an @interfaceObject adds to an interface exist on every implementation too,
        resolved through the interface (no subgraph resolves them on the object itself)."""
        for interface in self.types.values():
            if interface.kind != "interface" or not any(
                j.interface_object for j in interface.joins.values()
            ):
                continue
            for implementation in self.types.values():
                if interface.name not in implementation.implements:
                    continue
                for name, field in interface.fields.items():
                    if name not in implementation.fields:
                        implementation.fields[name] = MergedField(
                            name,
                            field.type,
                            field.description,
                            field.deprecated,
                            arguments=dict(field.arguments),
                        )

    def _enum_usage(self) -> dict[str, set[str]]:
        usage: dict[str, set[str]] = {}
        for merged in self.types.values():
            for field in merged.fields.values():
                side = "input" if merged.kind == "input" else "output"
                usage.setdefault(named_type(field.type), set()).add(side)
                for argument in field.arguments.values():
                    usage.setdefault(named_type(argument.type), set()).add("input")
        return usage

    def _merge_enums(self) -> None:
        usage = self._enum_usage()
        for merged in self.types.values():
            if merged.kind != "enum":
                continue
            every = set(merged.joins)
            partial = [v for v in merged.values.values() if set(v.subgraphs) != every]
            sides = usage.get(merged.name, {"output"})
            if not partial or sides == {"output"}:
                continue
            if sides == {"input"}:
                for value in partial:
                    del merged.values[value.name]
                continue
            names = ", ".join(v.name for v in partial)
            self.errors.append(
                f'Enum "{merged.name}" is used as both input and output type and its values '
                f"differ between subgraphs ({names} not defined everywhere)"
            )

    def _check_shareability(self) -> None:
        for merged in self.types.values():
            if merged.kind != "object":
                continue
            for field in merged.fields.values():
                overridden = {j.override for j in field.sources.values() if j.override}
                resolving = [
                    name
                    for name, join in field.sources.items()
                    if not join.external and name not in overridden
                ]
                if len(resolving) < 2:
                    continue
                refusing = [n for n in resolving if not field.sources[n].shareable]
                if refusing:
                    self.errors.append(
                        f'Non-shareable field "{merged.name}.{field.name}" is resolved from '
                        f"subgraphs {', '.join(resolving)} and defined as non-shareable in "
                        f"{', '.join(refusing)}"
                    )

    def _check_field_sets(self) -> None:
        for merged in self.types.values():
            for subgraph, join in merged.joins.items():
                for fields, _ in join.keys:
                    self._check_exists(subgraph, merged, fields, "@key")
            for field in merged.fields.values():
                for subgraph, source in field.sources.items():
                    if source.requires:
                        self._check_exists(subgraph, merged, source.requires, "@requires")
                    if source.provides:
                        target = self.types.get(named_type(field.type))
                        if target is not None:
                            self._check_exists(subgraph, target, source.provides, "@provides")

    def _check_exists(self, subgraph: str, merged: MergedType, text: str, what: str) -> None:
        try:
            items = parse_field_set(text)
        except (SupergraphError, GraphQLSyntaxError):
            self.errors.append(
                f'[{subgraph}] {what}(fields: "{text}") on "{merged.name}" is invalid'
            )
            return
        stack = [(merged, items)]
        while stack:
            current, selections = stack.pop()
            for item in selections:
                if item.type_condition:
                    target = self.types.get(item.type_condition)
                    if target is not None:
                        stack.append((target, item.selections))
                    continue
                field = current.fields.get(item.name)
                if field is None:
                    self.errors.append(
                        f'[{subgraph}] {what}(fields: "{text}") on "{merged.name}": field '
                        f'"{current.name}.{item.name}" does not exist'
                    )
                    continue
                child = self.types.get(named_type(field.type))
                if item.selections and child is not None:
                    stack.append((child, item.selections))
