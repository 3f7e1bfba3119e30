"""Rate limits and brute-force lock-outs kept in Redis, atomic across every service instance.

`SlidingWindowLimiter` caps how often something happens in a sliding window. `AttemptGuard`
limits *failed* attempts (logins, TOTP codes) per subject (account, client IP) with lock-outs
that grow exponentially, so callers never deal with Redis keys or scripts themselves.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from core.cache import GLOBAL_NAMESPACE
from core.errors import RateLimited

Clock = Callable[[], float]

# A sliding-window log: one sorted-set member per event, scored by its time in milliseconds.
# A refused hit is not recorded, so a client that waits `retry_after` gets through.
_HIT = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  if ARGV[4] ~= '' then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[1], window)
    count = count + 1
  end
  return {1, 0, count}
end
-- Free again once enough of the oldest events have slid out to leave room for one more.
local entry = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return {0, tonumber(entry[2]) + window - now, count}
"""

# Per subject four keys: failures in the window, failures in the last hour, the lock (value:
# locked-until in ms) and the strike count (lock-outs so far, remembered for a while).
# ARGV: now, attempt id, then six numbers per subject (see LockoutPolicy.script_arguments).
# Nothing is recorded unless every subject is free, so one locked subject costs the others nothing.
_BEGIN_ATTEMPT = """
local now, member = tonumber(ARGV[1]), ARGV[2]
local subjects = #KEYS / 4
local hour = 3600000
local locked_until = 0
for i = 0, subjects - 1 do
  local k, a = i * 4, 2 + i * 6
  local limit, window, hourly = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local base, longest, memory = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  local lock = tonumber(redis.call('GET', KEYS[k + 3]) or '0')
  if lock > now then
    locked_until = math.max(locked_until, lock)
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 1], '-inf', now - window)
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 2], '-inf', now - hour)
    local until_ = 0
    local count = redis.call('ZCARD', KEYS[k + 1])
    if count >= limit then
      local strikes = redis.call('INCR', KEYS[k + 4])
      redis.call('PEXPIRE', KEYS[k + 4], memory)
      local entry = redis.call('ZRANGE', KEYS[k + 1], count - limit, count - limit, 'WITHSCORES')
      local backoff = math.min(base * 2 ^ (strikes - 1), longest)
      until_ = math.max(tonumber(entry[2]) + window, now + backoff)
    end
    local in_hour = redis.call('ZCARD', KEYS[k + 2])
    if hourly > 0 and in_hour >= hourly then
      local oldest = in_hour - hourly
      local entry = redis.call('ZRANGE', KEYS[k + 2], oldest, oldest, 'WITHSCORES')
      until_ = math.max(until_, tonumber(entry[2]) + hour)
    end
    if until_ > now then
      redis.call('SET', KEYS[k + 3], string.format('%d', until_), 'PX', math.ceil(until_ - now))
      locked_until = math.max(locked_until, until_)
    end
  end
end
if locked_until > 0 then
  return {0, locked_until - now}
end
for i = 0, subjects - 1 do
  local k, a = i * 4, 2 + i * 6
  redis.call('ZADD', KEYS[k + 1], now, member)
  redis.call('PEXPIRE', KEYS[k + 1], tonumber(ARGV[a + 2]))
  redis.call('ZADD', KEYS[k + 2], now, member)
  redis.call('PEXPIRE', KEYS[k + 2], hour)
end
return {1, 0}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_s: float
    count: int

    @property
    def retry_after_whole_seconds(self) -> int:
        """`retry_after_s` rounded up, as clients see it in `retryAfter`."""
        return max(1, math.ceil(self.retry_after_s)) if not self.allowed else 0


def _subject_digest(subject: str) -> str:
    # Usernames and IP addresses are personal data: keep only a digest of them in Redis keys.
    return hashlib.blake2b(subject.encode("utf-8"), digest_size=16).hexdigest()


def _now_ms(clock: Clock) -> int:
    return int(clock() * 1000)


class SlidingWindowLimiter:
    """At most `limit` events per `window_s` seconds per key, counted over a sliding window."""

    def __init__(self, redis: Redis, key_prefix: str = "", *, clock: Clock = time.time) -> None:
        self._redis = redis
        self._prefix = f"{key_prefix}{GLOBAL_NAMESPACE}:rate:"
        self._clock = clock
        self._hit = redis.register_script(_HIT)

    def _key(self, key: str) -> str:
        return self._prefix + _subject_digest(key)

    async def _run(self, key: str, limit: int, window_s: float, member: str) -> RateDecision:
        allowed, retry_ms, count = await self._hit(
            keys=[self._key(key)],
            args=[_now_ms(self._clock), max(1, int(window_s * 1000)), limit, member],
        )
        return RateDecision(bool(allowed), max(0.0, float(retry_ms) / 1000), int(count))

    async def hit(self, key: str, limit: int, window_s: float) -> RateDecision:
        """Record one event when under the limit; otherwise refuse it with `retry_after_s`."""
        member = f"{_now_ms(self._clock)}-{secrets.token_hex(6)}"
        return await self._run(key, limit, window_s, member)

    async def peek(self, key: str, limit: int, window_s: float) -> RateDecision:
        """Whether a hit would be allowed now, recording nothing; `count` is the current count."""
        return await self._run(key, limit, window_s, "")

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._key(key))

    async def enforce(self, key: str, limit: int, window_s: float) -> None:
        """`hit`, raising `RateLimited` (with `retryAfter`) when refused."""
        decision = await self.hit(key, limit, window_s)
        if not decision.allowed:
            raise RateLimited(retry_after=decision.retry_after_whole_seconds)


@dataclass(frozen=True)
class LockoutPolicy:
    """Failed attempts allowed per subject, and how long a lock-out lasts once they run out.

    Defaults: 10 failures per 15 minutes, then locked until the window frees up but at least
    `backoff_base_seconds` (None: one window), doubling with every further lock-out (up to 4
    hours) while strikes are remembered (24 hours), and never more than 100 attempts an hour.
    """

    limit: int = 10
    window_seconds: float = 900
    hourly_limit: int = 100
    backoff_base_seconds: float | None = None
    backoff_max_seconds: float = 4 * 3600
    strike_memory_seconds: float = 24 * 3600

    def script_arguments(self) -> list[int]:
        backoff_base = (
            self.window_seconds if self.backoff_base_seconds is None else self.backoff_base_seconds
        )
        return [
            self.limit,
            int(self.window_seconds * 1000),
            self.hourly_limit,
            int(backoff_base * 1000),
            int(self.backoff_max_seconds * 1000),
            int(self.strike_memory_seconds * 1000),
        ]


@dataclass
class Attempt:
    """An attempt in progress, counted as a failure until `succeeded()` says otherwise.

    Counting up front means concurrent attempts cannot all slip past the limit before the first
    failure is recorded.
    """

    guard: AttemptGuard
    subjects: dict[str, str]
    member: str
    _settled: bool = field(default=False, init=False)

    async def succeeded(self, *, reset: Iterable[str] = ()) -> None:
        """Withdraw this attempt's failure; also clear the named dimensions' history entirely."""
        if self._settled:
            return
        self._settled = True
        to_reset = set(reset)
        async with self.guard.redis.pipeline(transaction=True) as pipe:
            for dimension, subject in self.subjects.items():
                window, hour, lock, strikes = self.guard.keys(dimension, subject)
                if dimension in to_reset:
                    pipe.delete(window, hour, lock, strikes)
                else:
                    pipe.zrem(window, self.member)
                    pipe.zrem(hour, self.member)
            await pipe.execute()


class AttemptGuard:
    """Brute-force protection for one kind of attempt (`scope`, e.g. "login").

    Each dimension (e.g. "account", "ip") has its own policy; `begin(account=..., ip=...)`
    refuses with `RateLimited` while any of the given subjects is locked out.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        scope: str,
        policies: Mapping[str, LockoutPolicy],
        key_prefix: str = "",
        clock: Clock = time.time,
    ) -> None:
        if not policies:
            raise ValueError("an AttemptGuard needs at least one dimension")
        self.redis = redis
        self.scope = scope
        self.policies = dict(policies)
        self._prefix = f"{key_prefix}{GLOBAL_NAMESPACE}:attempts:{scope}:"
        self._clock = clock
        self._begin = redis.register_script(_BEGIN_ATTEMPT)

    def keys(self, dimension: str, subject: str) -> tuple[str, str, str, str]:
        base = f"{self._prefix}{dimension}:{_subject_digest(subject)}:"
        return base + "window", base + "hour", base + "lock", base + "strikes"

    def _given(self, subjects: Mapping[str, str | None]) -> dict[str, str]:
        unknown = set(subjects) - set(self.policies)
        if unknown:
            raise ValueError(f"unknown dimension(s) for {self.scope}: {sorted(unknown)}")
        # A dimension without a subject (say, no client IP behind a proxy) is not limited.
        return {name: value for name, value in subjects.items() if value}

    async def begin(self, **subjects: str | None) -> Attempt:
        """Count an attempt against every subject, or raise `RateLimited` if one is locked out."""
        given = self._given(subjects)
        now = _now_ms(self._clock)
        member = f"{now}-{secrets.token_hex(6)}"
        keys: list[str] = []
        args: list[Any] = [now, member]
        for dimension, subject in given.items():
            keys.extend(self.keys(dimension, subject))
            args.extend(self.policies[dimension].script_arguments())
        if keys:
            allowed, retry_ms = await self._begin(keys=keys, args=args)
            if not allowed:
                raise RateLimited(retry_after=max(1, math.ceil(int(retry_ms) / 1000)))
        return Attempt(self, given, member)

    async def retry_after(self, **subjects: str | None) -> float:
        """Seconds until every given subject may try again; 0 when none is locked out."""
        given = self._given(subjects)
        now = _now_ms(self._clock)
        longest = 0
        for dimension, subject in given.items():
            raw = await self.redis.get(self.keys(dimension, subject)[2])
            if raw is not None:
                longest = max(longest, int(raw) - now)
        return max(0.0, longest / 1000)

    async def reset(self, **subjects: str | None) -> None:
        """Forget every failure, lock-out and strike of the given subjects."""
        keys = [key for d, s in self._given(subjects).items() for key in self.keys(d, s)]
        if keys:
            await self.redis.delete(*keys)
