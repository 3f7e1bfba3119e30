"""One request is one trace: through the router, the subgraph, its SQL, the relay's publish of
the event it wrote, and the consumer that processes the event in another service. Spans carry
`user.id` and `territory`, never personal data; log lines carry the trace id."""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Sequence

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from core.observability.logging import JsonFormatter
from tests.e2e.stack import ME, PASSWORD, Stack, eventually

pytest_plugins = ["tests.e2e.stack"]


def _traceparent() -> tuple[int, int, str]:
    trace_id, span_id = secrets.randbits(128) | 1, secrets.randbits(64) | 1
    return trace_id, span_id, f"00-{trace_id:032x}-{span_id:016x}-01"


def _by_id(spans: Sequence[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {span.context.span_id: span for span in spans if span.context is not None}


def _ancestors(span: ReadableSpan, spans: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain: list[ReadableSpan] = []
    parent = span.parent
    while parent is not None and parent.span_id in spans:
        chain.append(spans[parent.span_id])
        parent = spans[parent.span_id].parent
    return chain


def _one(spans: Sequence[ReadableSpan], kind: SpanKind, name: str) -> ReadableSpan:
    found = [span for span in spans if span.kind == kind and span.name == name]
    assert len(found) == 1, f"{kind} {name!r}: {[(s.kind, s.name) for s in spans]}"
    return found[0]


def _service(span: ReadableSpan) -> object:
    return span.resource.attributes.get("service.name")


async def test_a_registration_is_one_trace_from_the_router_to_the_consumer(stack: Stack) -> None:
    trace_id, caller_span, traceparent = _traceparent()
    member = await stack.register(traceparent=traceparent)
    code = stack.territory.code
    consumer = f"user-profiles-registered-{code}"

    async def consumed() -> bool:
        return any(
            s.kind == SpanKind.CONSUMER and s.name == f"{consumer} process"
            for s in stack.spans.of_trace(trace_id)
        )

    await eventually(consumed, what="the consumer's span in the registration's trace")
    spans = stack.spans.of_trace(trace_id)
    index = _by_id(spans)

    servers = [s for s in spans if s.kind == SpanKind.SERVER]
    router = next(s for s in servers if _service(s) == "router")
    assert router.parent is not None
    assert router.parent.span_id == caller_span  # continues the caller's trace
    plan = _one(spans, SpanKind.INTERNAL, "execute plan")
    assert plan.parent is not None
    assert plan.parent.span_id == router.context.span_id
    fetch = _one(spans, SpanKind.CLIENT, "fetch auth")
    assert fetch.parent is not None
    assert fetch.parent.span_id == plan.context.span_id
    auth = next(s for s in servers if _service(s) == "auth")
    assert auth.parent is not None
    assert auth.parent.span_id == fetch.context.span_id
    assert auth.attributes is not None
    assert auth.attributes["http.route"] == "/graphql"

    sql = [s for s in spans if s.attributes and s.attributes.get("db.system") == "postgresql"]
    auth_sql = [s for s in sql if auth in _ancestors(s, index)]
    assert any(
        str(s.attributes["db.query.text"]).startswith("INSERT") for s in auth_sql if s.attributes
    )

    publish = _one(spans, SpanKind.PRODUCER, f"territory.{code}.user.registered publish")
    assert auth in _ancestors(publish, index)  # published on behalf of the request
    process = _one(spans, SpanKind.CONSUMER, f"{consumer} process")
    assert process.parent is not None
    assert process.parent.span_id == publish.context.span_id
    assert process.attributes is not None
    assert process.attributes["territory"] == code
    assert any(process in _ancestors(s, index) for s in sql), "the consumer's SQL is traced"
    assert {s.context.trace_id for s in spans} == {trace_id}

    # Identifiers only: the username and password never appear on a span.
    for span in spans:
        for value in (span.attributes or {}).values():
            assert member.username not in str(value), span.name
            assert PASSWORD not in str(value), span.name


async def test_signed_in_requests_carry_user_and_territory_and_logs_the_trace_id(
    stack: Stack,
) -> None:
    member = await stack.register()
    trace_id, _, traceparent = _traceparent()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("e2e"))
    access_log = logging.getLogger("unityplan.access")
    access_log.addHandler(handler)
    try:
        body = await stack.graphql(
            ME, token=member.access_token, headers={"traceparent": traceparent}
        )
    finally:
        access_log.removeHandler(handler)
    assert body["data"]["me"]["id"] == member.id

    async def all_ended() -> bool:
        return sum(1 for s in stack.spans.of_trace(trace_id) if s.kind == SpanKind.SERVER) == 3

    await eventually(all_ended, what="the router's and both subgraphs' server spans")
    servers = [s for s in stack.spans.of_trace(trace_id) if s.kind == SpanKind.SERVER]
    subgraphs = [s for s in servers if _service(s) in {"auth", "user"}]
    assert {_service(s) for s in subgraphs} == {"auth", "user"}
    for span in subgraphs:
        assert span.attributes is not None
        assert span.attributes["user.id"] == member.id
        assert span.attributes["territory"] == stack.territory.code

    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert lines, "no access log lines"
    assert all(line.get("trace_id") == f"{trace_id:032x}" for line in lines), lines
    assert {line["route"] for line in lines} == {"/graphql"}
