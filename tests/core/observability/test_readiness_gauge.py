"""`service_dependency_ready`: set by /ready and by the background probe of every service."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry

from core.config import Settings
from core.observability.health import ReadinessGauge
from core.service import create_service_app


async def test_the_gauge_follows_each_dependency() -> None:
    healthy = {"value": False}

    async def flaky() -> None:
        if not healthy["value"]:
            raise ConnectionError("down")

    async def fine() -> None:
        return None

    registry = CollectorRegistry()
    gauge = ReadinessGauge(registry, {"postgres:default": fine, "nats": flaky})
    ok, _ = await gauge.check()
    assert not ok
    assert registry.get_sample_value("service_dependency_ready", {"dependency": "nats"}) == 0
    assert (
        registry.get_sample_value("service_dependency_ready", {"dependency": "postgres:default"})
        == 1
    )
    healthy["value"] = True
    assert (await gauge.check())[0]
    assert registry.get_sample_value("service_dependency_ready", {"dependency": "nats"}) == 1


async def test_ready_requests_refresh_the_gauge(settings: Settings) -> None:
    state = {"up": True}

    async def redis() -> None:
        if not state["up"]:
            raise ConnectionError("refused")

    app = create_service_app("gauged", settings, readiness={"redis": redis})
    registry = app.state.metrics.registry
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        assert (await http.get("/ready")).status_code == 200
        assert registry.get_sample_value("service_dependency_ready", {"dependency": "redis"}) == 1
        state["up"] = False
        assert (await http.get("/ready")).status_code == 503
        assert registry.get_sample_value("service_dependency_ready", {"dependency": "redis"}) == 0
