"""Metric names referenced by PromQL expressions, and those of the dashboards and alert rules.

Not a PromQL parser, but enough of one for names: string literals, label matchers, ranges,
grouping clauses and function calls are removed before identifiers are read, so a label
value, a label name or a function is never taken for a metric.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
ALERT_RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"

# Series Prometheus makes itself for every scrape target.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_OFFSET = re.compile(r"\b(?:offset)\s+-?[0-9a-z]+", re.IGNORECASE)
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "inf",
        "nan",
        "atan2",
    }
)


def metric_names(expr: str) -> set[str]:
    """Every metric name `expr` selects (as written: `x_bucket` stays `x_bucket`)."""
    names = set(_NAME_MATCHER.findall(expr))
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue  # a function or aggregation, or an operator
        names.add(name)
    return names


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, expr) of every panel target of every dashboard."""
    found: list[tuple[str, str]] = []
    for name, dashboard in dashboards().items():
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                found.append((f"{name}: {panel['title']}", target["expr"]))
    return found


def alert_rules() -> list[dict[str, Any]]:
    config = yaml.safe_load(ALERT_RULES.read_text())
    return [rule for group in config["groups"] for rule in group["rules"]]


def rule_expressions() -> list[tuple[str, str]]:
    return [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]


def referenced_metrics() -> dict[str, set[str]]:
    """Metric name -> where it is used, over every dashboard panel and alert rule."""
    uses: dict[str, set[str]] = {}
    for where, expr in [*dashboard_expressions(), *rule_expressions()]:
        for name in metric_names(expr):
            uses.setdefault(name, set()).add(where)
    return uses
