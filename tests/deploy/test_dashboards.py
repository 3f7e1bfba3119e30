"""Grafana dashboards and Prometheus alert rules: valid, consistent with their provisioning,
covering what operators need, and accepted by promtool where it is installed.

That every metric they use is exported by the running services is checked end to end in
tests/e2e/test_metrics_smoke.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.deploy.promql import (
    ALERT_RULES,
    ROOT,
    alert_rules,
    dashboard_expressions,
    dashboards,
    metric_names,
    referenced_metrics,
)

REQUIRED_DASHBOARDS = {"overview", "router", "auth", "events", "runtime"}
REQUIRED_ALERTS = {
    "HighErrorRate",
    "HighLatencyP95",
    "OutboxLagHigh",
    "ConsumerLagGrowing",
    "DependencyNotReady",
}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum by (status) (rate(router_http_requests_total[5m]))", {"router_http_requests_total"}),
        (
            'histogram_quantile(0.95, sum by (le, job) (rate(x_seconds_bucket{route="/a{b}"}[5m])))'
            " > 1e3",
            {"x_seconds_bucket"},
        ),
        (
            "a_total / ignoring (code) group_left (le) b_total offset 1h and on (job) c:rule",
            {"a_total", "b_total", "c:rule"},
        ),
        ('{__name__="named_total", job="auth"} or count(up) by (job)', {"named_total", "up"}),
        ("max by (stream) (deriv(pending[10m:1m])) * 60 > bool 0", {"pending"}),
        ('label_replace(m, "dst", "$1", "src", "(.*)")', {"m"}),
    ],
)
def test_metric_names_are_read_out_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_every_required_dashboard_is_there_with_unique_uids() -> None:
    found = dashboards()
    assert {name.removesuffix(".json") for name in found} >= REQUIRED_DASHBOARDS
    uids = [dashboard["uid"] for dashboard in found.values()]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_dashboard_panels_are_well_formed(name: str) -> None:
    dashboard = dashboards()[name]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
    assert dashboard["templating"]["list"][0]["name"] == "datasource"
    for panel in dashboard["panels"]:
        where = f"{name}: {panel['title']}"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, where
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids, where
        assert len(ref_ids) == len(set(ref_ids)), where
        for target in panel["targets"]:
            assert metric_names(target["expr"]), f"{where}: no metric in {target['expr']!r}"
            assert target["expr"].count("(") == target["expr"].count(")"), where


def test_dashboards_cover_what_the_issue_asks_for() -> None:
    used = {
        name.removesuffix(".json"): {n for _, e in exprs for n in metric_names(e)}
        for name, exprs in _expressions_by_dashboard().items()
    }
    assert {
        "router_plan_cache_hits_total",
        "router_subgraph_request_duration_seconds_bucket",
        "router_subgraph_requests_total",
        "router_active_subscriptions",
    } <= used["router"]
    assert {
        "outbox_backlog",
        "outbox_lag_seconds",
        "outbox_publish_failures_total",
        "jetstream_consumer_pending_messages",
        "jetstream_stream_bytes",
        "jetstream_stream_messages",
    } <= used["events"]
    assert {
        "python_event_loop_lag_seconds",
        "python_gc_collections_total",
        "process_resident_memory_bytes",
    } <= used["runtime"]
    assert "graphql_root_fields_total" in used["auth"]
    auth_exprs = " ".join(e for _, e in _expressions_by_dashboard()["auth.json"])
    for needle in (
        'field="login"',
        "INVALID_CREDENTIALS",
        "RATE_LIMITED",
        'field="refreshToken"',
        'reason="REUSED"',
        "Totp",
    ):
        assert needle in auth_exprs, needle
    overview = " ".join(e for _, e in _expressions_by_dashboard()["overview.json"])
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}" in overview
    assert "territory" in overview


def _expressions_by_dashboard() -> dict[str, list[tuple[str, str]]]:
    grouped: dict[str, list[tuple[str, str]]] = {}
    for where, expr in dashboard_expressions():
        grouped.setdefault(where.split(":", 1)[0], []).append((where, expr))
    return grouped


def test_grafana_provisions_the_dashboard_directory() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/unityplan.yml").read_text()
    )["providers"][0]
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]


def test_alert_rules_are_complete_and_point_at_the_runbook() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS
    runbook = (ROOT / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).strip().replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", runbook, flags=re.MULTILINE)
    }
    for rule in rules:
        assert rule["labels"]["severity"] in {"page", "warn"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert "for" in rule, rule["alert"]
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor in anchors, f"{rule['alert']}: no runbook section #{anchor}"
    by_name = {rule["alert"]: rule for rule in rules}
    assert "> 0.05" in by_name["HighErrorRate"]["expr"]
    assert by_name["HighErrorRate"]["for"] == "5m"
    assert "histogram_quantile(0.95" in by_name["HighLatencyP95"]["expr"]
    assert "> 30" in by_name["OutboxLagHigh"]["expr"]


def test_prometheus_loads_the_rules_file_that_compose_mounts() -> None:
    config_path = ROOT / "deploy" / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    (rule_file,) = config["rule_files"]
    assert (config_path.parent / rule_file).resolve() == ALERT_RULES.resolve()
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["prometheus"]["volumes"])
    in_container = mounts["./deploy/prometheus.yml"].rsplit("/", 1)[0] + "/" + rule_file
    mounted_dir = mounts["./deploy/prometheus"]
    assert in_container.startswith(mounted_dir + "/")


def test_every_alert_expression_uses_a_metric() -> None:
    for rule in alert_rules():
        assert metric_names(rule["expr"]), rule["alert"]
    assert referenced_metrics()


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian package `prometheus` provides it)",
)
def test_promtool_accepts_the_rules_and_the_config() -> None:
    assert PROMTOOL is not None
    rules = subprocess.run(  # noqa: S603 - a fixed local tool on files of the repository
        [PROMTOOL, "check", "rules", str(ALERT_RULES)], capture_output=True, text=True, timeout=60
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = subprocess.run(  # noqa: S603
        [PROMTOOL, "check", "config", "--syntax-only", str(ROOT / "deploy" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert config.returncode == 0, config.stdout + config.stderr


def test_every_service_sends_traces_to_jaeger_over_otlp_http() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    jaeger = services["jaeger"]
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert "4318:4318" in jaeger["ports"]
    for name in ("auth", "user", "router"):
        endpoint = services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert endpoint == "http://jaeger:4318", name
    datasources = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    assert {"prometheus", "jaeger"} <= {source["type"] for source in datasources}
