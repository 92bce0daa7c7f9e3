"""Rate limits: a tool call takes one token from the user's and the tenant's buckets.

Both buckets at once (``RateLimiter.acquire``, in-process or Redis); when
either is empty the call is refused with 429, a JSON-RPC error saying which
limit and ``Retry-After`` in whole seconds, and counted in ``rate_limited``.
"""

from __future__ import annotations

import math

from gateway._metrics import Metrics
from gateway._ratelimit import Bucket, Denial, RateLimiter
from gateway._types import Principal, Tenant
from gateway.gate._asgi import Refused, Reply
from gateway.gate._tool_call import ToolCall


def _buckets(tenant: Tenant, principal: Principal) -> list[Bucket]:
    return [
        Bucket(f"{tenant.name}:u:{principal.identity[:32]}", tenant.per_user, "user"),
        Bucket(f"{tenant.name}:t", tenant.per_tenant, "tenant"),
    ]


def _too_many(call: ToolCall, denial: Denial) -> Reply:
    retry = max(1, math.ceil(denial.retry_after))
    error = {
        "code": -32000,
        "message": f"Rate limit of the {denial.scope} exceeded; retry after {retry} s",
        "data": {"retry_after_seconds": retry, "limit": denial.scope},
    }
    return Reply(
        429,
        {"jsonrpc": "2.0", "id": call.request_id, "error": error},
        [(b"retry-after", str(retry).encode())],
    )


class RateLimits:
    def __init__(self, limiter: RateLimiter, metrics: Metrics) -> None:
        self._limiter = limiter
        self._metrics = metrics

    async def take(self, tenant: Tenant, principal: Principal, call: ToolCall) -> None:
        """One token from each bucket; ``Refused`` with 429 when either is empty."""
        denial = await self._limiter.acquire(_buckets(tenant, principal))
        if denial is None:
            return
        self._metrics.rate_limited.labels(tenant.name, denial.scope).inc()
        raise Refused(_too_many(call, denial))
