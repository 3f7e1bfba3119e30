"""Progressive `@override(label:)`: which labels are in force for one request. A configured label
is always in force; a `percent(N)` label that is not configured is drawn per request, in force
for about N% of them, so that share of traffic is planned with the overriding subgraph."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from router.supergraph import Supergraph

_PERCENT = re.compile(r"percent\((\d+(?:\.\d+)?)\)")


class OverrideLabels:
    """The label sets requests are planned with; plans are cached per resolved set, so a
    supergraph with k sampled labels has at most 2^k plans per document."""

    __slots__ = ("_draw", "_sampled", "configured")

    def __init__(
        self,
        supergraph: Supergraph,
        configured: frozenset[str],
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.configured = configured
        self._draw = draw
        # (label, share of requests in [0, 1]) for each `percent(N)` label of the supergraph
        # that is not configured, in a stable order.
        self._sampled = tuple(
            (label, float(found.group(1)) / 100)
            for label in sorted(labels_of(supergraph) - configured)
            if (found := _PERCENT.fullmatch(label)) is not None
        )

    def for_request(self) -> frozenset[str]:
        """The labels in force for one request: the configured ones, and each sampled label
        with its percentage's chance."""
        if not self._sampled:
            return self.configured
        drawn = [label for label, share in self._sampled if self._draw() < share]
        return self.configured | frozenset(drawn) if drawn else self.configured


def labels_of(supergraph: Supergraph) -> frozenset[str]:
    """Every progressive override label the supergraph's fields name."""
    return frozenset(
        source.override_label
        for info in supergraph.types.values()
        for field in info.fields.values()
        for source in field.sources
        if source.override_label
    )
