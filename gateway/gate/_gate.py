"""The HTTP gate in front of each tenant's MCP endpoint: its stages, in order.

For ``/t/<tenant>/mcp`` a request meets each stage in turn; each lets it on or
turns it away (``_asgi.Refused``, answered here):

1. the tenant, and the correlation id every answer echoes (``_front``: 404;
   503 with ``Retry-After`` while the gateway is still loading its tenants);
2. the bearer token, verified to a principal (``_bearer``: 401);
3. admission (``_admission``): a revoked grant (401, or the Apps SDK's
   in-band challenge) and, while the tenant is at its ``Internal`` stage,
   anyone not on its allow-lists (403 ``access_denied``);
4. a GET, the optional SSE stream a stateless gateway never uses
   (``_dispatch``: 405);
5. the body, read once within the size limit (``_body``: 413);
6. for a ``tools/call`` only (``_tool_call``, the one place that tells), the
   tool's scope (403 ``insufficient_scope``, ``_challenges``), revocations
   that can be read (else a retriable ``unavailable`` tool error) and the
   user's and tenant's rate limits (``_limits``: 429), in ``_call_checks``;
   protocol chatter (initialize, notifications, ping, tools/list) never spends
   the tool-call budget;
7. dispatch (``_dispatch``): a plain ``tools/call`` to the tool-call lane
   (``_lane``), anything else to the MCP transport with a ``CallContext``.

Every request counts in ``http_requests`` under its tenant and status.

While tracing is on (``stowage.tracing``) the request is a SERVER span that
continues the caller's W3C ``traceparent`` (else starts the trace), the
correlation id is its trace id (unless the client sent ``X-Request-Id``), and
authentication, admission (the revocation check) and, in ``_call_checks``, the
rate limit are spans of their own; a refusal marks its stage's span failed.
While it is off the request meets no tracing code but one flag.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from gateway._metrics import Metrics
from gateway._ratelimit import RateLimiter
from gateway._settings import GatewaySettings
from gateway._types import CorrelationId, Tenant
from gateway.auth._auth import TokenVerifier
from gateway.auth._revocations import Revocations, Standing
from gateway.directory._directory import TenantDirectory
from gateway.gate._admission import Admission
from gateway.gate._asgi import ASGIApp, Refused
from gateway.gate._bearer import Authentication
from gateway.gate._body import read_body
from gateway.gate._call_checks import ToolCallChecks
from gateway.gate._challenges import Challenges
from gateway.gate._dispatch import Dispatch, refuse_stream
from gateway.gate._front import Answer, correlation_id, known
from gateway.gate._limits import RateLimits
from gateway.gate._tool_call import tool_call
from gateway.surface._calls import CallContext
from gateway.surface._lane import ToolCallLane
from gateway.surface._tools import Catalogues
from stowage import tracing

_SPANS = tracing.Tracer("gateway")
_ROUTE = "/t/{tenant}/mcp"


class McpGate:
    """ASGI app for ``/t/{tenant}/mcp``: the stages in order, then the lane or the SDK."""

    def __init__(
        self,
        *,
        directory: TenantDirectory,
        metrics: Metrics,
        authentication: Authentication,
        admission: Admission,
        body_limit: int,
        checks: ToolCallChecks,
        dispatch: Dispatch,
    ) -> None:
        self._directory = directory
        self._metrics = metrics
        self._authentication = authentication
        self._admission = admission
        self._body_limit = body_limit
        self._checks = checks
        self._dispatch = dispatch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request through the stages; a refusal answered; every answer tagged, counted."""
        tenant = self._directory.get(scope["path_params"]["tenant"])
        if not tracing.enabled():
            await self._answer(tenant, correlation_id(scope), scope, receive, send)
            return
        with _SPANS.span(
            f"{scope['method']} {_ROUTE}",
            _request_attributes(scope, tenant),
            kind=tracing.SpanKind.SERVER,
            context=tracing.extract(_trace_headers(scope)),
            record_exception=False,
        ) as span:
            cid = correlation_id(scope, tracing.trace_id(span))
            if cid != tracing.trace_id(span):
                span.set_attribute("stowage.correlation_id", cid)
            status = await self._answer(tenant, cid, scope, receive, send)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                tracing.fail(f"HTTP {status}", span)

    async def _answer(
        self, tenant: Tenant | None, cid: CorrelationId, scope: Scope, receive: Receive, send: Send
    ) -> int:
        """Serve the request, answer a refusal, count the answer; its status."""
        answer = Answer(send, cid)
        try:
            await self._serve(tenant, cid, scope, receive, answer.send)
        except Refused as refused:
            await refused.reply.send_to(answer.send)
        finally:
            label = tenant.name if tenant is not None else "unknown"
            self._metrics.http_requests.labels(label, str(answer.status)).inc()
        return answer.status

    async def _serve(
        self,
        found: Tenant | None,
        cid: CorrelationId,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Each stage lets the request on or raises ``Refused``; the last one answers it."""
        tenant = known(found, self._directory)
        with _SPANS.span("gateway.authenticate", record_exception=False):
            principal = await self._authentication.principal(tenant, scope)
        with _SPANS.span("gateway.check_revocations", record_exception=False):
            standing = await self._admission.standing(tenant, principal, cid, scope, receive)
        refuse_stream(scope)
        body = await read_body(scope, receive, self._body_limit)
        ctx = CallContext(tenant, principal, cid)
        call = tool_call(scope, body.message)
        if call is not None:
            if standing is Standing.UNKNOWN:
                with _SPANS.span("gateway.check_revocations", record_exception=False):
                    standing = await self._admission.tool_call_standing(
                        tenant, principal, cid, call
                    )
            await self._checks.clear(ctx, call, standing)
        await self._dispatch.forward(ctx, body, scope, receive, send)


def _trace_headers(scope: Scope) -> dict[str, str]:
    """The request's W3C trace context headers, for the span that continues it."""
    return {
        key.decode("latin-1"): value.decode("latin-1")
        for key, value in scope["headers"]
        if key in (b"traceparent", b"tracestate")
    }


def _request_attributes(scope: Scope, tenant: Tenant | None) -> dict[str, str]:
    return {
        "http.request.method": scope["method"],
        "http.route": _ROUTE,
        "stowage.tenant": tenant.name if tenant is not None else "unknown",
    }


def build_gate(
    *,
    settings: GatewaySettings,
    directory: TenantDirectory,
    verifier: TokenVerifier,
    limiter: RateLimiter,
    catalogues: Catalogues,
    metrics: Metrics,
    inner: ASGIApp,
    lane: ToolCallLane,
    revocations: Revocations,
) -> McpGate:
    """The gate with its stages, over the gateway's long-lived services."""
    challenges = Challenges(settings)
    limit = settings.max_body_bytes
    return McpGate(
        directory=directory,
        metrics=metrics,
        authentication=Authentication(verifier, challenges, metrics),
        admission=Admission(revocations, challenges, metrics, limit),
        body_limit=limit,
        checks=ToolCallChecks(catalogues, challenges, metrics, RateLimits(limiter, metrics)),
        dispatch=Dispatch(lane, inner),
    )
