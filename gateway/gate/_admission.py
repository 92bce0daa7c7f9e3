"""Admission: whether an authenticated caller may use the tenant's app at all.

Two reasons to turn a valid token away, each counted in ``auth_failures``:

- its grant was revoked (``Revocations.standing``): 401 ``invalid_token``
  whose ``error_description`` says access was revoked, so the client asks the
  user to sign in again; a ``tools/call`` from ChatGPT gets the Apps SDK's
  tool-level challenge instead (``_challenges``);
- the tenant is at its ``Internal`` launch stage and the caller is not on its
  allow-lists (``_access.admits``): 403 ``access_denied``.

The caller's standing goes on to the tool-call checks: revocations that
cannot be read yet (``Standing.UNKNOWN``) refuse only tool calls, and only
once a tool call has waited a few seconds for them (``tool_call_standing``):
a worker coming up makes a call wait, not fail.
"""

from __future__ import annotations

from starlette.types import Receive, Scope

from gateway._metrics import Metrics
from gateway._types import CorrelationId, Principal, Tenant
from gateway.auth._access import NOT_OPEN, admits
from gateway.auth._revocations import Revocations, Standing
from gateway.gate._asgi import Refused, Reply
from gateway.gate._challenges import Challenges, challenge_reply
from gateway.gate._tool_call import ToolCall, peek_tool_call

#: What a client is told about a revoked token (the 401's ``error_description``).
REVOKED = "access to this app was revoked; sign in again to connect"


class Admission:
    def __init__(
        self, revocations: Revocations, challenges: Challenges, metrics: Metrics, body_limit: int
    ) -> None:
        self._revocations = revocations
        self._challenges = challenges
        self._metrics = metrics
        self._body_limit = body_limit

    async def standing(
        self,
        tenant: Tenant,
        principal: Principal,
        cid: CorrelationId,
        scope: Scope,
        receive: Receive,
    ) -> Standing:
        """The caller's standing once it is neither revoked nor kept out by the launch stage."""
        standing = await self._revocations.standing(tenant, principal)
        if standing is Standing.REVOKED:
            call = await peek_tool_call(scope, receive, self._body_limit)
            raise Refused(self._revoked(tenant, cid, call))
        if not admits(tenant.access, principal):
            self._metrics.auth_failures.labels(tenant.name, "not_open").inc()
            body = {"error": "access_denied", "error_description": NOT_OPEN}
            headers = self._challenges.header(tenant.name, "access_denied", NOT_OPEN)
            raise Refused(Reply(403, body, headers))
        return standing

    async def tool_call_standing(
        self, tenant: Tenant, principal: Principal, cid: CorrelationId, call: ToolCall
    ) -> Standing:
        """For ``call`` by a caller whose standing is UNKNOWN: the revocations read again,
        for a few seconds while the worker cannot answer (``Revocations.standing``'s
        ``patient``); refused as :meth:`standing` refuses if they say it was revoked."""
        standing = await self._revocations.standing(tenant, principal, patient=True)
        if standing is Standing.REVOKED:
            raise Refused(self._revoked(tenant, cid, call))
        return standing

    def _revoked(self, tenant: Tenant, cid: CorrelationId, call: ToolCall | None) -> Reply:
        """401 for a revoked grant; for ChatGPT's tool call, the Apps SDK's challenge."""
        self._metrics.auth_failures.labels(tenant.name, "revoked").inc()
        challenge = self._challenges.value(tenant.name, "invalid_token", REVOKED)
        return challenge_reply(
            call, 401, "invalid_token", REVOKED, challenge, code="access_revoked", cid=cid
        )
