"""Exponential backoff shared by the outbox relay (failed publishes) and consumers (naks)."""

from __future__ import annotations


def backoff_seconds(attempt: int, *, base: float, cap: float) -> float:
    """Delay before retry `attempt` (1 for the first): base, 2*base, 4*base, ... at most cap."""
    if attempt < 1:
        return 0.0
    # Past 2**32 the product only overflows toward the cap anyway.
    return float(min(cap, base * 2 ** min(attempt - 1, 32)))
