"""Printing a composed supergraph in the standard supergraph SDL format (link, join v0.3/4)."""

from __future__ import annotations

import json
import re

from router.composition.subgraph import SubgraphSchema
from router.composition.types import MergedField, MergedType

_HEADER = """directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE

directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean{extra}) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION

directive @join__graph(name: String!, url: String!) on ENUM_VALUE

directive @join__implements(graph: join__Graph!, interface: String!) repeatable on OBJECT | INTERFACE

directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR

directive @join__unionMember(graph: join__Graph!, member: String!) repeatable on UNION

directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA
"""  # noqa: E501 - directive definitions are printed as standard composition prints them
_INACCESSIBLE = (
    "directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION"
    " | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION\n"
)
_TAG = (
    "directive @tag(name: String!) repeatable on FIELD_DEFINITION | OBJECT | INTERFACE | UNION"
    " | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION"
    " | SCHEMA\n"
)
_CONTEXT = """directive @context(name: String!) repeatable on INTERFACE | OBJECT | UNION

input join__ContextArgument {
  name: String!
  type: String!
  context: String!
  selection: join__FieldValue!
}

scalar join__FieldValue
"""
_LINK_TYPES = """scalar join__FieldSet

scalar link__Import

enum link__Purpose {
  \"\"\"`SECURITY` features provide metadata necessary to securely resolve fields.\"\"\"
  SECURITY

  \"\"\"`EXECUTION` features provide metadata necessary for operation execution.\"\"\"
  EXECUTION
}
"""


def _quote(text: str) -> str:
    return json.dumps(text)


def _description(text: str | None, indent: str) -> str:
    if not text:
        return ""
    if "\n" in text or '"' in text:
        escaped = text.replace('"""', '\\"""')
        return f'{indent}"""\n{indent}{escaped}\n{indent}"""\n'
    return f"{indent}{_quote(text)}\n"


def graph_names(subgraphs: list[SubgraphSchema]) -> dict[str, str]:
    """The `join__Graph` enum value of each subgraph (its name, upper-cased, made a valid name)."""
    found: dict[str, str] = {}
    for subgraph in subgraphs:
        base = re.sub(r"[^A-Za-z0-9_]", "_", subgraph.name).upper()
        if not base or base[0].isdigit():
            base = "_" + base
        name, suffix = base, 1
        while name in found.values():
            suffix += 1
            name = f"{base}_{suffix}"
        found[subgraph.name] = name
    return found


class _Printer:
    def __init__(self, subgraphs: list[SubgraphSchema], types: dict[str, MergedType]) -> None:
        self.subgraphs = subgraphs
        self.order = [s.name for s in subgraphs]
        self.graphs = graph_names(subgraphs)
        self.types = types

    def marks(self, target: MergedType | MergedField | object) -> str:
        text = ""
        if getattr(target, "inaccessible", False):
            text += " @inaccessible"
        for tag in getattr(target, "tags", ()):
            text += f" @tag(name: {_quote(tag)})"
        return text

    def type_directives(self, merged: MergedType) -> list[str]:
        lines: list[str] = []
        for subgraph in self.order:
            join = merged.joins.get(subgraph)
            if join is None:
                continue
            graph = self.graphs[subgraph]
            extras = ", isInterfaceObject: true" if join.interface_object else ""
            if not join.keys:
                lines.append(f"@join__type(graph: {graph}{extras})")
            for fields, resolvable in join.keys:
                text = f"@join__type(graph: {graph}, key: {_quote(fields)}"
                if join.extension:
                    text += ", extension: true"
                if not resolvable:
                    text += ", resolvable: false"
                lines.append(text + extras + ")")
        for interface, subgraphs in merged.implements.items():
            for subgraph in sorted(set(subgraphs), key=self.order.index):
                lines.append(
                    f"@join__implements(graph: {self.graphs[subgraph]}, "
                    f"interface: {_quote(interface)})"
                )
        for member, subgraphs in merged.members.items():
            for subgraph in sorted(set(subgraphs), key=self.order.index):
                lines.append(
                    f"@join__unionMember(graph: {self.graphs[subgraph]}, member: {_quote(member)})"
                )
        return lines

    def field_joins(self, merged: MergedType, field: MergedField) -> str:
        plain = set(field.sources) == set(merged.joins) and all(
            not (j.external or j.requires or j.provides or j.override or j.context_arguments)
            and j.type == field.type
            for j in field.sources.values()
        )
        if plain:
            return ""
        if not field.sources:
            return " @join__field"
        overridden = {j.override for j in field.sources.values() if j.override}
        parts = []
        for subgraph in self.order:
            join = field.sources.get(subgraph)
            if join is None:
                continue
            args = [f"graph: {self.graphs[subgraph]}"]
            if join.requires:
                args.append(f"requires: {_quote(join.requires)}")
            if join.provides:
                args.append(f"provides: {_quote(join.provides)}")
            if join.type and join.type != field.type:
                args.append(f"type: {_quote(join.type)}")
            if join.external:
                args.append("external: true")
            if join.override:
                args.append(f"override: {_quote(join.override)}")
            if join.override_label:
                args.append(f"overrideLabel: {_quote(join.override_label)}")
            if subgraph in overridden and not join.external:
                args.append("usedOverridden: true")
            if join.context_arguments:
                items = ", ".join(
                    f"{{context: {_quote(context)}, name: {_quote(name)}, type: {_quote(type_)}, "
                    f"selection: {_quote(selection)}}}"
                    for name, type_, context, selection in join.context_arguments
                )
                args.append(f"contextArguments: [{items}]")
            parts.append(f" @join__field({', '.join(args)})")
        return "".join(parts)

    def field(self, merged: MergedType, field: MergedField) -> str:
        text = _description(field.description, "  ") + "  " + field.name
        if field.arguments:
            arguments = []
            for argument in field.arguments.values():
                part = f"{argument.name}: {argument.type}"
                if argument.default is not None:
                    part += f" = {argument.default}"
                arguments.append(part + self.marks(argument))
            text += "(" + ", ".join(arguments) + ")"
        text += f": {field.type}"
        if field.default is not None:
            text += f" = {field.default}"
        text += self.field_joins(merged, field) + self.marks(field)
        if field.deprecated:
            text += " " + field.deprecated
        return text

    def type(self, merged: MergedType) -> str:
        keyword = {
            "object": "type",
            "interface": "interface",
            "union": "union",
            "enum": "enum",
            "input": "input",
            "scalar": "scalar",
        }[merged.kind]
        head = _description(merged.description, "") + f"{keyword} {merged.name}"
        interfaces = list(merged.implements)
        if interfaces and merged.kind in {"object", "interface"}:
            head += " implements " + " & ".join(interfaces)
        directives = self.type_directives(merged)
        directives.extend(f"@context(name: {_quote(c)})" for c in merged.contexts)
        if merged.specified_by:
            directives.append(f"@specifiedBy(url: {_quote(merged.specified_by)})")
        marks = self.marks(merged).strip()
        if marks:
            directives.append(marks)
        head += "".join(f"\n  {d}" for d in directives)
        if merged.kind == "scalar":
            return head
        if merged.kind == "union":
            return head + "\n  = " + " | ".join(merged.members)
        if merged.kind == "enum":
            values = []
            for value in merged.values.values():
                line = _description(value.description, "  ") + f"  {value.name}"
                line += "".join(
                    f" @join__enumValue(graph: {self.graphs[s]})"
                    for s in sorted(set(value.subgraphs), key=self.order.index)
                )
                line += self.marks(value)
                if value.deprecated:
                    line += " " + value.deprecated
                values.append(line)
            return head + " {\n" + "\n".join(values) + "\n}"
        fields = "\n".join(self.field(merged, f) for f in merged.fields.values())
        return head + " {\n" + fields + "\n}"

    def print(
        self, uses_inaccessible: bool, uses_tag: bool, uses_labels: bool, uses_context: bool
    ) -> str:
        join_version = "v0.5" if uses_context else "v0.4" if uses_labels else "v0.3"
        links = [
            '@link(url: "https://specs.apollo.dev/link/v1.0")',
            f'@link(url: "https://specs.apollo.dev/join/{join_version}", for: EXECUTION)',
        ]
        if uses_context:
            links.append('@link(url: "https://specs.apollo.dev/context/v0.1")')
        if uses_inaccessible:
            links.append('@link(url: "https://specs.apollo.dev/inaccessible/v0.2", for: SECURITY)')
        if uses_tag:
            links.append('@link(url: "https://specs.apollo.dev/tag/v0.3")')
        roots = [
            f"  {operation}: {name}"
            for operation, name in (
                ("query", "Query"),
                ("mutation", "Mutation"),
                ("subscription", "Subscription"),
            )
            if name in self.types
        ]
        parts = [
            "schema\n"
            + "".join(f"  {link}\n" for link in links)
            + "{\n"
            + "\n".join(roots)
            + "\n}\n"
        ]
        extra = ", overrideLabel: String" if join_version != "v0.3" else ""
        if uses_context:
            extra += ", contextArguments: [join__ContextArgument!]"
        header = _HEADER.replace("{extra}", extra)
        if uses_context:
            header += "\n" + _CONTEXT
        if uses_inaccessible:
            header = _INACCESSIBLE + "\n" + header
        if uses_tag:
            header += "\n" + _TAG
        parts.append(header)
        graphs = "\n".join(
            f"  {self.graphs[s.name]} @join__graph(name: {_quote(s.name)}, url: {_quote(s.url)})"
            for s in self.subgraphs
        )
        parts.append("enum join__Graph {\n" + graphs + "\n}\n")
        parts.append(_LINK_TYPES)
        for name in sorted(self.types):
            parts.append(self.type(self.types[name]) + "\n")
        return "\n".join(parts)


def print_supergraph(
    subgraphs: list[SubgraphSchema],
    types: dict[str, MergedType],
    *,
    uses_inaccessible: bool,
    uses_tag: bool,
    uses_context: bool = False,
) -> str:
    uses_labels = any(
        join.override_label
        for t in types.values()
        for f in t.fields.values()
        for join in f.sources.values()
    )
    return _Printer(subgraphs, types).print(uses_inaccessible, uses_tag, uses_labels, uses_context)
