"""Which specs a supergraph links (`@link` or Federation 1 `@core`) and their local names.

A spec's elements are named `<prefix>__<element>` unless imported; the prefix is the spec name
or its `as:`. Specs the router must understand but does not are refused here, at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from graphql.language import (
    ConstDirectiveNode,
    DirectiveNode,
    ListValueNode,
    ObjectValueNode,
    SchemaDefinitionNode,
    StringValueNode,
    ValueNode,
)

from router.supergraph.model import SupergraphError

_URL = re.compile(
    r"^(?P<base>.*?)/(?P<name>[A-Za-z_][A-Za-z0-9_-]*)/v(?P<major>\d+)\.(?P<minor>\d+)/?$"
)

# Specs whose meaning the router implements, or that carry no execution semantics.
_UNDERSTOOD = {"link", "core", "join", "inaccessible", "tag", "context", "cost", "listSize"}
_SUPPORTED_JOIN = {(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)}


@dataclass(frozen=True, slots=True)
class LinkedSpec:
    name: str
    version: tuple[int, int]
    prefix: str
    imports: dict[str, str]  # element name (with @ for directives) -> local name
    purpose: str | None

    def directive(self, element: str) -> str:
        """Local name of a directive of this spec (`element` without @)."""
        if f"@{element}" in self.imports:
            return self.imports[f"@{element}"]
        if element == self.name:
            return self.prefix
        return f"{self.prefix}__{element}"

    def type_name(self, element: str) -> str:
        return self.imports.get(element, f"{self.prefix}__{element}")


@dataclass(frozen=True, slots=True)
class Links:
    specs: dict[str, LinkedSpec]
    link_directive: str  # `link` or `core`

    @property
    def join(self) -> LinkedSpec:
        return self.specs["join"]

    def directive(self, spec: str, element: str) -> str | None:
        linked = self.specs.get(spec)
        return linked.directive(element) if linked else None

    def is_spec_element(self, name: str) -> bool:
        """Whether a type or directive name belongs to a linked spec (hidden from clients)."""
        for spec in self.specs.values():
            if name == spec.prefix or name.startswith(spec.prefix + "__"):
                return True
            if name in spec.imports.values() or f"@{name}" in spec.imports:
                return True
        return False


def _string(value: ValueNode | None) -> str | None:
    return value.value if isinstance(value, StringValueNode) else None


def _argument(directive: DirectiveNode | ConstDirectiveNode, name: str) -> ValueNode | None:
    for argument in directive.arguments or ():
        if argument.name.value == name:
            return argument.value
    return None


def _imports(value: ValueNode | None) -> dict[str, str]:
    found: dict[str, str] = {}
    if not isinstance(value, ListValueNode):
        return found
    for item in value.values:
        if isinstance(item, StringValueNode):
            found[item.value] = item.value.lstrip("@")
        elif isinstance(item, ObjectValueNode):
            fields = {f.name.value: _string(f.value) for f in item.fields}
            name = fields.get("name")
            if name:
                alias = fields.get("as") or name
                found[name] = alias.lstrip("@")
    return found


def read_links(schema: SchemaDefinitionNode | None) -> Links:
    """The specs linked from the schema definition; refuses unsupported ones."""
    if schema is None:
        raise SupergraphError("Not a supergraph: no schema definition with @link or @core")
    specs: dict[str, LinkedSpec] = {}
    link_directive = ""
    for directive in schema.directives or ():
        name = directive.name.value
        if name not in {"link", "core"}:
            continue
        url = _string(_argument(directive, "url")) or _string(_argument(directive, "feature"))
        if url is None:
            raise SupergraphError(f"@{name} without url")
        match = _URL.match(url)
        if match is None:
            raise SupergraphError(f"Unrecognised spec URL in @{name}: {url}")
        spec_name = match["name"]
        if spec_name in {"link", "core"}:
            link_directive = _string(_argument(directive, "as")) or spec_name
        version = (int(match["major"]), int(match["minor"]))
        purpose_node = _argument(directive, "for")
        purpose = getattr(purpose_node, "value", None)
        if spec_name not in _UNDERSTOOD and purpose in {"SECURITY", "EXECUTION"}:
            raise SupergraphError(
                f"The supergraph links {url} for {purpose}, which this router does not support"
            )
        if spec_name == "join" and version not in _SUPPORTED_JOIN:
            raise SupergraphError(f"Unsupported join spec version v{version[0]}.{version[1]}")
        specs[spec_name] = LinkedSpec(
            name=spec_name,
            version=version,
            prefix=_string(_argument(directive, "as")) or spec_name,
            imports=_imports(_argument(directive, "import")),
            purpose=purpose,
        )
    if "join" not in specs:
        raise SupergraphError("Not a supergraph: the join spec is not linked")
    return Links(specs=specs, link_directive=link_directive or "link")
