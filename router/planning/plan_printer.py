"""A stable, readable text form of a query plan, for snapshot tests and debugging."""

from __future__ import annotations

from graphql import parse, print_ast

from router.planning.nodes import Condition, Fetch, Flatten, Parallel, PlanNode, QueryPlan, Sequence
from router.supergraph import print_field_set


def _indent(text: str, by: str) -> str:
    return "\n".join(by + line if line else line for line in text.splitlines())


def _pretty_selection(text: str) -> str:
    return print_ast(parse(text, no_location=True))


def _fetch(node: Fetch) -> str:
    lines = [f'Fetch(service: "{node.subgraph}") {{']
    for source, target in sorted(node.input_rewrites.items()):
        lines.append(f"  rewrite: {source}.__typename = {target}")
    for use in node.context_uses:
        path = ".".join(use.path)
        selection = print_field_set(use.selection)
        lines.append(f'  context: ${use.variable} = {{ {selection} }} at "{path}"')
    if node.refines_typename:
        lines.append("  answer: __typename refines the object's type")
    if node.requires_text:
        lines.append(_indent(_pretty_selection(node.requires_text), "  ") + " =>")
    lines.append(_indent(_pretty_selection(node.operation), "  "))
    lines.append("}")
    return "\n".join(lines)


def _print(node: PlanNode) -> str:
    if isinstance(node, Fetch):
        return _fetch(node)
    if isinstance(node, Flatten):
        path = ".".join(node.path)
        return f'Flatten(path: "{path}") {{\n{_indent(_print(node.node), "  ")}\n}}'
    if isinstance(node, Sequence | Parallel):
        name = "Sequence" if isinstance(node, Sequence) else "Parallel"
        inner = ",\n".join(_print(child) for child in node.nodes)
        return f"{name} {{\n{_indent(inner, '  ')}\n}}"
    assert isinstance(node, Condition)
    if node.if_clause is not None and node.else_clause is None:
        return f"Include(if: ${node.variable}) {{\n{_indent(_print(node.if_clause), '  ')}\n}}"
    if node.else_clause is not None and node.if_clause is None:
        return f"Skip(if: ${node.variable}) {{\n{_indent(_print(node.else_clause), '  ')}\n}}"
    parts = [f"Condition(if: ${node.variable}) {{"]
    if node.if_clause is not None:
        parts.append(_indent("Then {\n" + _indent(_print(node.if_clause), "  ") + "\n}", "  "))
    if node.else_clause is not None:
        parts.append(_indent("Else {\n" + _indent(_print(node.else_clause), "  ") + "\n}", "  "))
    parts.append("}")
    return "\n".join(parts)


def print_plan(plan: QueryPlan) -> str:
    """The plan as indented text, e.g. `QueryPlan { Sequence { Fetch(service: "a") { ... } } }`."""
    body = _print(plan.node) if plan.node is not None else ""
    return "QueryPlan {\n" + _indent(body, "  ") + "\n}" if body else "QueryPlan {}"
