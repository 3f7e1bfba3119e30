"""A client's federated subscription: the upstream events of its root field, each completed
with the fields other subgraphs own (`_entities`, with the client's own credentials) and shaped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from functools import partial
from typing import Any

import orjson
from redis.asyncio import Redis

from core.cache import create_redis
from core.config import Settings
from core.events.timing import HOPS, ROUTER_RECEIVED, ROUTER_SENT, TIMING_EXTENSION, now_ms
from core.security import KeyRing, SessionRegistry, authenticate
from core.security.router_proof import RouterSigner
from router.edge.authentication import EdgeAuthenticator
from router.execution.executor import PlanRun
from router.execution.gateway import Gateway
from router.execution.response_merge import rename_keys
from router.execution.shaping import Shaper
from router.pipeline.document import PreparedOperation
from router.subscriptions.hub import (
    Ended,
    SubscriptionHub,
    UpstreamEvent,
    UpstreamKey,
    canonical_json,
)
from router.subscriptions.lifetime import SessionWatch, Verifier, Viewer, unauthenticated


class StreamError(Exception):
    """The subscription ended with GraphQL errors (upstream refusal, revoked session, ...)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(str(errors[0].get("message")) if errors else "Subscription failed")
        self.errors = errors


def _from_subgraph(error: Any, subgraph: str) -> dict[str, Any]:
    if not isinstance(error, dict):
        return {"message": "Subgraph error", "extensions": {"serviceName": subgraph}}
    found = {k: v for k, v in error.items() if k in {"message", "path", "extensions"}}
    extensions = found.get("extensions")
    found["extensions"] = {
        **(extensions if isinstance(extensions, dict) else {}),
        "serviceName": subgraph,
    }
    return found


def _upstream_timing(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The per-hop timestamps a subgraph sent with an event (numbers only), if any."""
    extensions = event.get("extensions")
    found = extensions.get(TIMING_EXTENSION) if isinstance(extensions, dict) else None
    if not isinstance(found, dict):
        return None
    return {hop: found[hop] for hop in HOPS if isinstance(found.get(hop), int | float)}


class SubscriptionService:
    """Everything the subscription transports share: the hub, the session watch, the plans."""

    def __init__(self, settings: Settings, authenticator: EdgeAuthenticator | None = None) -> None:
        router = settings.router
        self.settings = settings
        self.authenticator = authenticator
        self.hub = SubscriptionHub(
            mailbox_capacity=router.subscription_buffer_events,
            signer=RouterSigner.from_settings(settings),
        )
        self._redis: Redis | None = None
        self.watch = SessionWatch(self._credentials, router.subscription_revocation_check_seconds)

    async def events(
        self,
        gateway: Gateway,
        prepared: PreparedOperation,
        variables: dict[str, Any],
        viewer: Viewer | None,
        on_overflow: Callable[[], None] | None = None,
    ) -> AsyncIterator[bytes]:
        """The client's responses (JSON, encoded once for every client sharing the event), one
        per upstream event; ends when the upstream completes,
        raises `StreamError` when it fails or the viewer's session or token ends, and
        `SlowConsumer` (after calling `on_overflow`) when the client fell too far behind."""
        if viewer is not None and viewer.ended is not None:
            raise StreamError(unauthenticated(viewer.ended))
        plan = prepared.subscription
        if plan is None:
            raise ValueError("not a subscription")  # the pipeline streams subscriptions only
        primary = plan.primary
        sent = {name: variables[name] for name in primary.variable_usages if name in variables}
        key = UpstreamKey.of(
            primary.subgraph,
            primary.operation,
            sent,
            viewer.principal.session_id if viewer is not None else None,
        )
        url = gateway.client.urls[primary.subgraph]
        authorization = viewer.authorization if viewer is not None else None
        mailbox = self.hub.attach(
            key, url, {"query": primary.operation, "variables": sent}, authorization
        )
        mailbox.on_overflow = on_overflow
        stop_watching = (
            viewer.on_end(lambda reason: mailbox.cut(Ended(unauthenticated(reason))))
            if viewer is not None
            else None
        )
        headers = {"authorization": authorization} if authorization else {}
        memo = (id(prepared), canonical_json(variables))
        try:
            while True:
                item = await mailbox.get()
                if isinstance(item, Ended):
                    if item.errors:
                        raise StreamError(item.errors)
                    return
                completion = item.completions.get(memo)
                if completion is None:
                    completion = item.completions[memo] = asyncio.create_task(
                        self._encoded(gateway, prepared, variables, item, headers, primary.subgraph)
                    )
                if completion.done():
                    # Completed for an earlier client: no trip through the event loop for it
                    # (most clients of an event arrive here).
                    yield completion.result()
                else:
                    # Shielded: one client leaving must not cancel what the others wait for.
                    yield await asyncio.shield(completion)
        finally:
            if stop_watching is not None:
                stop_watching()
            self.hub.detach(key, mailbox)

    async def _encoded(
        self,
        gateway: Gateway,
        prepared: PreparedOperation,
        variables: dict[str, Any],
        event: UpstreamEvent,
        headers: Mapping[str, str],
        subgraph: str,
    ) -> bytes:
        response = await self._complete(
            gateway, prepared, variables, event.payload, headers, subgraph
        )
        timing = _upstream_timing(event.payload)
        if timing is not None:
            # The event's timestamps so far, and the router's: read, and answered for clients.
            timing[ROUTER_RECEIVED] = event.received_at
            timing[ROUTER_SENT] = now_ms()
            response["extensions"] = {TIMING_EXTENSION: timing}
        return orjson.dumps(response)

    async def _complete(
        self,
        gateway: Gateway,
        prepared: PreparedOperation,
        variables: dict[str, Any],
        event: dict[str, Any],
        headers: Mapping[str, str],
        subgraph: str,
    ) -> dict[str, Any]:
        errors = [_from_subgraph(e, subgraph) for e in event.get("errors") or ()]
        data = event.get("data")
        if not isinstance(data, dict):
            return {"data": None, "errors": errors or [{"message": "Subscription event empty"}]}
        plan = prepared.subscription
        if plan is not None and plan.primary.output_renames:
            # Fields the upstream document aliased apart take their names back (on a copy:
            # the event is shared by every client of the upstream).
            data = orjson.loads(orjson.dumps(data))
            rename_keys(data, plan.primary.output_renames)
        per_event = plan.per_event if plan is not None else None
        if per_event is not None:
            # The event is shared by every client of the upstream; entity answers differ per
            # client (their own credentials), so each merges into a copy.
            run = PlanRun(gateway.client, per_event, variables, headers)
            run.data = orjson.loads(orjson.dumps(data))
            run.errors = errors
            await run.run()
            data = run.data
        response: dict[str, Any] = {
            "data": Shaper(gateway.schema, variables, errors).root(
                prepared.shape, data, prepared.root_type
            )
        }
        if errors:
            response["errors"] = errors
        return response

    def _credentials(self) -> tuple[Verifier, SessionRegistry] | None:
        if self.authenticator is not None:
            # The edge's verifier: JWKS of the auth subgraph, verified tokens remembered.
            return self.authenticator.authenticate, self.authenticator.sessions
        if not self.settings.redis.url:
            return None  # no revocation registry: tokens go on to the subgraphs unchecked
        # Without edge verification (development, tests): the devstack's signing key.
        self._redis = create_redis(self.settings.redis)
        keyring = KeyRing.from_settings(self.settings)
        registry = SessionRegistry.from_settings(self._redis, self.settings)
        return partial(authenticate, keyring=keyring, sessions=registry), registry

    async def close(self) -> None:
        await self.hub.close()
        await self.watch.close()
        if self._redis is not None:
            await self._redis.aclose()
