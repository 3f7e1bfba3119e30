"""Dashboards and alerts never point at nothing: after a smoke workload through the real
router and subgraphs, every metric a dashboard panel or an alert rule uses is exported by a
service's /metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.promql import HISTOGRAM_SUFFIXES, PROMETHEUS_SERIES, referenced_metrics
from tests.e2e.stack import LOGIN, ME, PASSWORD, REFRESH, UPDATE_PROFILE, Stack, eventually

pytest_plugins = ["tests.e2e.stack"]

SERVICES = ("router", "auth", "user")


async def _workload(stack: Stack) -> None:
    """Register, sign in (right and wrong), refresh, read through both subgraphs, and write an
    event the user subgraph consumes (registration) and one it publishes (profile update)."""
    alice = await stack.register()
    await stack.register()
    signed_in = await stack.graphql(
        LOGIN, {"input": {"username": alice.username, "password": PASSWORD}}
    )
    assert not signed_in.get("errors"), signed_in
    refused = await stack.graphql(
        LOGIN, {"input": {"username": alice.username, "password": "not the password"}}
    )
    assert refused["errors"][0]["extensions"]["code"] == "INVALID_CREDENTIALS"
    refreshed = await stack.graphql(REFRESH, {"token": alice.refresh_token})
    assert not refreshed.get("errors"), refreshed
    for _ in range(2):  # the second time from the router's plan cache
        me = await stack.graphql(ME, token=alice.access_token)
        assert me["data"]["me"]["username"] == alice.username, me
    updated = await stack.graphql(
        UPDATE_PROFILE, {"input": {"about": "smoke test"}}, token=alice.access_token
    )
    assert updated["data"]["updateProfile"]["about"] == "smoke test", updated


def _exported(texts: dict[str, str]) -> tuple[set[str], dict[str, str]]:
    """Sample names of every service, and the type of every metric family."""
    samples: set[str] = set()
    types: dict[str, str] = {}
    for text in texts.values():
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            samples.update(sample.name for sample in family.samples)
    return samples, types


def _is_exported(name: str, samples: set[str], types: dict[str, str]) -> bool:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            # `x_bucket` needs a histogram `x`; `_sum`/`_count` a histogram or summary.
            family = name.removesuffix(suffix)
            wanted = {"histogram"} if suffix == "_bucket" else {"histogram", "summary"}
            return types.get(family) in wanted and name in samples
    return name in samples


async def test_every_metric_of_the_dashboards_and_alerts_is_exported(stack: Stack) -> None:
    await _workload(stack)

    async def scraped() -> dict[str, str]:
        return {service: await stack.metrics(service) for service in SERVICES}

    async def events_flowed() -> bool:
        texts = await scraped()
        user = texts["user"]
        return (
            'events_consumed_total{consumer="user-profiles-registered-' in user
            and 'outcome="handled"' in user
            and "outbox_published_total{" in user + texts["auth"]
            and any("jetstream_consumer_pending_messages{" in t for t in texts.values())
        )

    # The registered events reach the user subgraph's consumer, and the relays' JetStream
    # sample (every few seconds) has seen the streams and consumers.
    await eventually(events_flowed, within=30, what="events published, consumed and sampled")
    samples, types = _exported(await scraped())
    used = referenced_metrics()
    assert used, "no metrics found in the dashboards and rules"
    missing = {
        name: sorted(where)
        for name, where in used.items()
        if name not in PROMETHEUS_SERIES and not _is_exported(name, samples, types)
    }
    assert not missing, f"used by dashboards or alerts but exported by no service: {missing}"


async def test_the_workload_is_visible_in_the_metrics(stack: Stack) -> None:
    """The numbers behind the panels move with the traffic, not only the names exist."""
    texts = {service: await stack.metrics(service) for service in SERVICES}
    auth = texts["auth"]
    assert 'field="login",operation="mutation",outcome="INVALID_CREDENTIALS"' in auth
    assert 'field="login",operation="mutation",outcome="ok"' in auth
    assert 'field="refreshToken",operation="mutation",outcome="ok"' in auth
    router = {
        s.name: s.value
        for f in text_string_to_metric_families(texts["router"])
        for s in f.samples
        if not s.labels or s.name.startswith("router_plan_cache")
    }
    assert router["router_plan_cache_hits_total"] >= 1
    assert 'router_subgraph_requests_total{outcome="ok",subgraph="auth"}' in texts["router"]
    assert 'router_subgraph_requests_total{outcome="ok",subgraph="user"}' in texts["router"]
    assert 'territory="' + stack.territory.code + '"' in texts["user"]
    for service in SERVICES:
        assert "python_event_loop_lag_seconds " in texts[service]
        assert 'service_dependency_ready{dependency="' in texts[service]
