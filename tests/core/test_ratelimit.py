"""Sliding-window limits and brute-force lock-outs in Redis, driven by a test clock."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from core.cache import create_redis
from core.config import Settings
from core.errors import RateLimited
from core.ratelimit import AttemptGuard, LockoutPolicy, SlidingWindowLimiter


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = create_redis(settings.redis)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(settings: Settings, redis: Redis) -> AsyncIterator[str]:
    mine = f"{settings.redis.key_prefix}{secrets.token_hex(4)}:"
    yield mine
    keys = [key async for key in redis.scan_iter(match=f"{mine}*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(redis: Redis, prefix: str, clock: Clock) -> SlidingWindowLimiter:
    return SlidingWindowLimiter(redis, prefix, clock=clock)


def _login_guard(redis: Redis, prefix: str, clock: Clock, **ip_policy: float) -> AttemptGuard:
    return AttemptGuard(
        redis,
        scope="login",
        policies={"account": LockoutPolicy(), "ip": LockoutPolicy(**ip_policy)},  # type: ignore[arg-type]
        key_prefix=prefix,
        clock=clock,
    )


# SlidingWindowLimiter


async def test_limit_reached_refuses_with_retry_after(limiter: SlidingWindowLimiter) -> None:
    counts = [(await limiter.hit("invite:1.2.3.4", 3, 60)).count for _ in range(3)]
    assert counts == [1, 2, 3]

    refused = await limiter.hit("invite:1.2.3.4", 3, 60)

    assert not refused.allowed
    assert refused.count == 3
    assert 59 < refused.retry_after_s <= 60
    assert refused.retry_after_whole_seconds == 60
    assert (await limiter.hit("invite:5.6.7.8", 3, 60)).allowed  # other keys unaffected


async def test_window_slides(limiter: SlidingWindowLimiter, clock: Clock) -> None:
    await limiter.hit("k", 2, 60)
    clock.advance(30)
    await limiter.hit("k", 2, 60)
    refused = await limiter.hit("k", 2, 60)
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(30, abs=0.01)

    clock.advance(30.001)  # the first event slides out, the second is still in the window
    assert (await limiter.hit("k", 2, 60)).allowed
    assert not (await limiter.hit("k", 2, 60)).allowed

    clock.advance(61)
    assert (await limiter.hit("k", 2, 60)).count == 1


async def test_refused_hits_are_not_counted(limiter: SlidingWindowLimiter, clock: Clock) -> None:
    await limiter.hit("k", 1, 10)
    for _ in range(5):
        assert not (await limiter.hit("k", 1, 10)).allowed
    clock.advance(10.001)
    assert (await limiter.hit("k", 1, 10)).allowed


async def test_peek_records_nothing(limiter: SlidingWindowLimiter) -> None:
    await limiter.hit("k", 2, 60)
    peeked = await limiter.peek("k", 2, 60)
    assert peeked.allowed
    assert peeked.count == 1
    assert (await limiter.peek("k", 2, 60)).count == 1
    await limiter.hit("k", 2, 60)
    full = await limiter.peek("k", 2, 60)
    assert not full.allowed
    assert full.retry_after_s > 0


async def test_reset(limiter: SlidingWindowLimiter) -> None:
    for _ in range(2):
        await limiter.hit("k", 2, 60)
    assert not (await limiter.hit("k", 2, 60)).allowed
    await limiter.reset("k")
    assert (await limiter.hit("k", 2, 60)).count == 1


async def test_enforce_raises_rate_limited_with_retry_after(limiter: SlidingWindowLimiter) -> None:
    await limiter.enforce("k", 1, 30)
    with pytest.raises(RateLimited) as caught:
        await limiter.enforce("k", 1, 30)
    assert caught.value.graphql_extensions() == {"code": "RATE_LIMITED", "retryAfter": 30}


async def test_real_clock_window_slides(redis: Redis, prefix: str) -> None:
    limiter = SlidingWindowLimiter(redis, prefix)
    # Long enough that two round trips to Redis fit in it even on a loaded machine.
    await limiter.hit("k", 1, 2.0)
    assert not (await limiter.hit("k", 1, 2.0)).allowed
    deadline = time.monotonic() + 10
    while not (await limiter.peek("k", 1, 2.0)).allowed:
        assert time.monotonic() < deadline, "window never slid"
        await asyncio.sleep(0.05)


# AttemptGuard


async def test_ten_failures_then_rate_limited(redis: Redis, prefix: str, clock: Clock) -> None:
    guard = _login_guard(redis, prefix, clock, limit=50)
    for _ in range(10):
        await guard.begin(account="alice", ip="203.0.113.9")  # each one fails: never settled
        clock.advance(1)

    with pytest.raises(RateLimited) as caught:
        await guard.begin(account="alice", ip="203.0.113.9")
    assert 890 <= caught.value.extensions["retryAfter"] <= 900
    # Still locked on the next try (a correct password must not get past this either).
    with pytest.raises(RateLimited):
        await guard.begin(account="alice", ip="198.51.100.1")
    assert await guard.retry_after(account="alice") > 0
    # Another account from the same address is still fine.
    await guard.begin(account="bob", ip="203.0.113.9")


async def test_successful_attempts_do_not_count(redis: Redis, prefix: str, clock: Clock) -> None:
    guard = _login_guard(redis, prefix, clock)
    for _ in range(9):
        await guard.begin(account="alice")
    for _ in range(20):
        attempt = await guard.begin(account="alice")
        await attempt.succeeded()
        await attempt.succeeded()  # settling twice changes nothing
    await guard.begin(account="alice")  # the 10th failure
    with pytest.raises(RateLimited):
        await guard.begin(account="alice")


async def test_success_can_reset_a_dimension(redis: Redis, prefix: str, clock: Clock) -> None:
    guard = _login_guard(redis, prefix, clock, limit=100)
    for _ in range(9):
        await guard.begin(account="alice", ip="203.0.113.9")
    attempt = await guard.begin(account="alice", ip="203.0.113.9")
    await attempt.succeeded(reset=["account"])
    for _ in range(10):
        await guard.begin(account="alice", ip="203.0.113.9")
    with pytest.raises(RateLimited):
        await guard.begin(account="alice", ip="203.0.113.9")


async def test_back_off_grows_and_is_capped(redis: Redis, prefix: str, clock: Clock) -> None:
    policy = LockoutPolicy(
        limit=2, window_seconds=60, backoff_base_seconds=60, backoff_max_seconds=200
    )
    guard = AttemptGuard(
        redis, scope="totp", policies={"account": policy}, key_prefix=prefix, clock=clock
    )
    lockouts = []
    for _ in range(4):
        await guard.begin(account="alice")
        await guard.begin(account="alice")
        with pytest.raises(RateLimited) as caught:
            await guard.begin(account="alice")
        lockouts.append(caught.value.extensions["retryAfter"])
        clock.advance(await guard.retry_after(account="alice") + 0.01)
    assert lockouts == [60, 120, 200, 200]


async def test_lockout_lasts_a_window_by_default(redis: Redis, prefix: str, clock: Clock) -> None:
    policy = LockoutPolicy(limit=3, window_seconds=5)
    guard = AttemptGuard(
        redis, scope="totp", policies={"account": policy}, key_prefix=prefix, clock=clock
    )
    lockouts = []
    for _ in range(3):
        for _ in range(3):
            await guard.begin(account="alice")
        with pytest.raises(RateLimited) as caught:
            await guard.begin(account="alice")
        lockouts.append(caught.value.extensions["retryAfter"])
        clock.advance(await guard.retry_after(account="alice") + 0.01)
    assert lockouts == [5, 10, 20]


async def test_strikes_are_forgotten_after_their_memory(
    redis: Redis, prefix: str, clock: Clock
) -> None:
    policy = LockoutPolicy(
        limit=1, window_seconds=10, backoff_base_seconds=10, strike_memory_seconds=100
    )
    guard = AttemptGuard(
        redis, scope="totp", policies={"account": policy}, key_prefix=prefix, clock=clock
    )
    await guard.begin(account="alice")
    with pytest.raises(RateLimited):
        await guard.begin(account="alice")
    # The strike counter expires in Redis time; drop it as Redis would after 100 s.
    await redis.delete(guard.keys("account", "alice")[3])
    clock.advance(11)
    await guard.begin(account="alice")
    with pytest.raises(RateLimited) as caught:
        await guard.begin(account="alice")
    assert caught.value.extensions["retryAfter"] == 10


async def test_hourly_cap(redis: Redis, prefix: str, clock: Clock) -> None:
    policy = LockoutPolicy(limit=5, window_seconds=60, hourly_limit=8, backoff_base_seconds=1)
    guard = AttemptGuard(
        redis, scope="reset", policies={"ip": policy}, key_prefix=prefix, clock=clock
    )
    for _ in range(5):
        await guard.begin(ip="203.0.113.9")
    clock.advance(61)
    for _ in range(3):
        await guard.begin(ip="203.0.113.9")
    with pytest.raises(RateLimited) as caught:
        await guard.begin(ip="203.0.113.9")
    assert 3530 <= caught.value.extensions["retryAfter"] <= 3540


async def test_locked_subject_costs_the_others_nothing(
    redis: Redis, prefix: str, clock: Clock
) -> None:
    guard = _login_guard(redis, prefix, clock, limit=3)
    for account in ("a", "b", "c"):
        await guard.begin(account=account, ip="203.0.113.9")
    for _ in range(5):
        with pytest.raises(RateLimited):
            await guard.begin(account="victim", ip="203.0.113.9")
    # None of the refused attempts counted against "victim".
    assert await redis.zcard(guard.keys("account", "victim")[0]) == 0
    await guard.begin(account="victim", ip="198.51.100.1")


async def test_concurrent_attempts_cannot_pass_the_limit(
    redis: Redis, prefix: str, clock: Clock
) -> None:
    guard = _login_guard(redis, prefix, clock)
    results = await asyncio.gather(
        *(guard.begin(account="alice") for _ in range(25)), return_exceptions=True
    )
    assert sum(not isinstance(result, BaseException) for result in results) == 10
    assert all(isinstance(r, RateLimited) for r in results if isinstance(r, BaseException))


async def test_reset_lifts_a_lockout(redis: Redis, prefix: str, clock: Clock) -> None:
    guard = _login_guard(redis, prefix, clock)
    for _ in range(10):
        await guard.begin(account="alice")
    with pytest.raises(RateLimited):
        await guard.begin(account="alice")
    await guard.reset(account="alice")
    assert await guard.retry_after(account="alice") == 0
    await guard.begin(account="alice")


async def test_missing_subject_is_not_limited_and_unknown_dimension_refused(
    redis: Redis, prefix: str, clock: Clock
) -> None:
    guard = _login_guard(redis, prefix, clock, limit=1)
    for _ in range(3):
        await guard.begin(account="alice", ip=None)
    with pytest.raises(ValueError, match="unknown dimension"):
        await guard.begin(device="x")


async def test_keys_hold_no_personal_data(redis: Redis, prefix: str, clock: Clock) -> None:
    guard = _login_guard(redis, prefix, clock)
    await guard.begin(account="alice.smith", ip="203.0.113.9")
    keys = [key.decode() async for key in redis.scan_iter(match=f"{prefix}*")]
    assert keys
    assert not [key for key in keys if "alice" in key or "203.0.113" in key]
