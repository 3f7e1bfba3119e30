"""Per-service Prometheus registries and metric naming."""

from __future__ import annotations

from core.observability.metrics import ServiceMetrics, metric_prefix


def test_metric_prefix_is_a_valid_name() -> None:
    assert metric_prefix("auth") == "auth"
    assert metric_prefix("user-api") == "user_api"
    assert metric_prefix("9lives") == "_9lives"


def test_each_service_has_its_own_registry() -> None:
    auth, user = ServiceMetrics("auth"), ServiceMetrics("user")
    auth.observe_request(method="POST", route="/graphql", status=200, seconds=0.01)
    assert b"auth_http_requests_total" in auth.exposition()
    assert b"auth_http_requests_total" not in user.exposition()
    assert b"process_cpu_seconds_total" in user.exposition()
