"""Token buckets: in-process by default, in Redis when replicas must share limits.

A check takes several buckets at once (the user's and the tenant's) and is all
or nothing: a call is admitted only if every bucket has a token, and only then
are tokens taken. The Redis limiter does this in one Lua script, so one check
is one round trip and atomic across gateway replicas.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway._types import Rate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: Rate
    #: What the bucket limits (``user`` or ``tenant``), for metrics.
    scope: str


@dataclass(frozen=True)
class Denial:
    scope: str
    retry_after: float


class RateLimiter(Protocol):
    async def acquire(self, buckets: Sequence[Bucket]) -> Denial | None:
        """Take one token from every bucket, or none and say which one is empty."""
        ...

    async def aclose(self) -> None: ...


class LocalRateLimiter:
    """Buckets in this process's memory, bounded by least-recently-used eviction."""

    def __init__(self, max_buckets: int = 100_000) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max = max_buckets

    def _level(self, bucket: Bucket, now: float) -> float:
        tokens, updated = self._buckets.get(bucket.key, (float(bucket.rate.burst), now))
        return min(float(bucket.rate.burst), tokens + (now - updated) * bucket.rate.per_second)

    async def acquire(self, buckets: Sequence[Bucket]) -> Denial | None:
        now = time.monotonic()
        levels = [self._level(b, now) for b in buckets]
        for bucket, level in zip(buckets, levels, strict=True):
            if level < 1.0:
                return Denial(bucket.scope, (1.0 - level) / bucket.rate.per_second)
        for bucket, level in zip(buckets, levels, strict=True):
            self._buckets[bucket.key] = (level - 1.0, now)
            self._buckets.move_to_end(bucket.key)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return None

    async def aclose(self) -> None:
        return None


# KEYS: one hash per bucket. ARGV: per bucket, (rate per second, burst).
# Returns 0 when admitted, else {index of the empty bucket, retry after in ms}.
# Uses the server clock (TIME) so replicas with skewed clocks agree.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local levels = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  local level = math.min(burst, tokens + math.max(0, now - ts) * rate)
  if level < 1 then
    return {i, math.ceil((1 - level) / rate * 1000)}
  end
  levels[i] = level
end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  redis.call('HSET', key, 'tokens', levels[i] - 1, 'ts', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
return 0
"""


class RedisRateLimiter:
    """Buckets in Redis, shared by every gateway replica that uses the same server.

    When Redis cannot be reached the check fails open (the call is admitted and
    the failure logged and counted): a limiter outage must not take the storage
    platform down with it.
    """

    def __init__(self, url: str, prefix: str = "stowage:rl:") -> None:
        # One immediate retry on a connection error: after Redis restarts, a pooled
        # connection fails once on first use; the retry takes a fresh one, so
        # the shared limit applies again at once instead of failing open.
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        self._script = self._redis.register_script(_LUA)
        self._prefix = prefix
        self.errors = 0

    async def acquire(self, buckets: Sequence[Bucket]) -> Denial | None:
        keys = [self._prefix + b.key for b in buckets]
        args: list[float] = []
        for b in buckets:
            args.extend((b.rate.per_second, float(b.rate.burst)))
        try:
            reply = await self._script(keys=keys, args=args)
        except RedisError as e:
            self.errors += 1
            log.warning("rate limiter unavailable, admitting the call: %s", e)
            return None
        if reply == 0 or not isinstance(reply, list):
            return None
        index, retry_ms = int(reply[0]), int(reply[1])
        return Denial(buckets[index - 1].scope, retry_ms / 1000.0)

    async def aclose(self) -> None:
        await self._redis.aclose()
