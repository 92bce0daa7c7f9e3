"""The checks only a ``tools/call`` meets, in order: scope, revocations known, rate limits.

- The tool's scope, from the tenant's catalogue (``Catalogues.of(tenant).
  scope_for``), must be among the token's: else 403 ``insufficient_scope``
  with the step-up challenge, or the Apps SDK's tool-level one
  (``_challenges``).
- While the tenant's revocations cannot be read (its worker is down), a tool
  call gets a retriable ``unavailable`` tool error without reaching the
  worker: a revoked grant must not slip through.
- Then a token from the user's and the tenant's buckets (``_limits``, 429).
"""

from __future__ import annotations

from gateway._metrics import Metrics
from gateway.auth._revocations import Standing
from gateway.gate._asgi import Refused, Reply
from gateway.gate._challenges import Challenges, challenge_reply
from gateway.gate._limits import RateLimits
from gateway.gate._tool_call import ToolCall
from gateway.surface._calls import CallContext, error_result
from gateway.surface._tools import Catalogues
from stowage import tracing

_SPANS = tracing.Tracer("gateway")
_UNREADABLE = "the tenant worker is unavailable (its access revocations cannot be read)"


def _revocations_known(ctx: CallContext, call: ToolCall, standing: Standing) -> None:
    """``Refused`` with a retriable tool error while the revocations cannot be read."""
    if standing is not Standing.UNKNOWN:
        return
    tracing.fail(f"unavailable: {_UNREADABLE}")
    result = error_result(
        "unavailable", _UNREADABLE, ctx.correlation_id, retriable=True, retry_after_seconds=1.0
    )
    raise Refused(Reply(200, call.reply(result)))


class ToolCallChecks:
    def __init__(
        self, catalogues: Catalogues, challenges: Challenges, metrics: Metrics, limits: RateLimits
    ) -> None:
        self._catalogues = catalogues
        self._challenges = challenges
        self._metrics = metrics
        self._limits = limits

    async def clear(self, ctx: CallContext, call: ToolCall, standing: Standing) -> None:
        """Returns when ``call`` may go on; ``Refused`` at the first check it fails."""
        self._within_scope(ctx, call)
        _revocations_known(ctx, call, standing)
        with _SPANS.span("gateway.rate_limit", record_exception=False):
            await self._limits.take(ctx.tenant, ctx.principal, call)

    def _within_scope(self, ctx: CallContext, call: ToolCall) -> None:
        """``Refused`` with the step-up challenge when the token lacks the tool's scope."""
        tenant, tool = ctx.tenant, call.tool
        needed = self._catalogues.of(tenant).scope_for(tool) if tool is not None else None
        if needed is None or needed in ctx.principal.scopes:
            return
        self._metrics.auth_failures.labels(tenant.name, "scope").inc()
        description = f"The {tool} tool needs the {needed} scope"
        challenge = self._challenges.value(tenant.name, "insufficient_scope", description, needed)
        raise Refused(
            challenge_reply(
                call,
                403,
                "insufficient_scope",
                description,
                challenge,
                code="insufficient_scope",
                cid=ctx.correlation_id,
                scope=needed,
            )
        )
