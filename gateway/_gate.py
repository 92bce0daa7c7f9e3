"""The HTTP gate in front of each tenant's MCP endpoint.

In order, for ``/t/<tenant>/mcp``: find the tenant (404; 503 with
``Retry-After`` while a starting gateway is still loading its tenants, since
the tenant may well exist), take or make the
correlation id, authenticate the bearer token (401), refuse a revoked token
(401, ``error_description`` saying access was revoked, so the client asks the
user to sign in again) and, while the tenant is at its ``Internal`` stage,
anyone not on its allow-lists (403 ``access_denied``); read the body within the
size limit (413), and for ``tools/call`` only, check the tool's scope (403)
and take a token from the user's and the tenant's buckets (429). A tool call
while the tenant's revocations cannot be read yet (its worker is down) gets a
retriable ``unavailable`` tool error without reaching the worker. A GET (the
optional server-to-client SSE stream) is 405: a stateless gateway never has
anything to send on it, and an open one would only hold a connection. Protocol
chatter (initialize, notifications, ping, tools/list) never spends the tool-call
budget. Then a plain ``tools/call`` is answered by the tool-call lane
(``_lane``) and everything else goes to the MCP transport with a CallContext
attached.

A tool call whose token lacks the tool's scope is refused in one of two shapes,
both carrying the same RFC 6750 challenge (``error="insufficient_scope"``,
``scope=`` the one scope needed, ``resource_metadata=``):

- by default, HTTP 403 with it in ``WWW-Authenticate``: the MCP authorization
  specification's answer to insufficient scope at runtime, from which MCP
  clients (the Python and TypeScript SDKs, the Inspector) start step-up
  authorization;
- when the call carries the OpenAI Apps SDK's client metadata
  (``params._meta["openai/…"]``, which ChatGPT sends with every tool call),
  HTTP 200 with an ``isError`` tool result whose
  ``_meta["mcp/www_authenticate"]`` lists the challenge (the shape the Apps SDK
  documents for asking the user to link the account again from inside a tool
  call) and whose text and ``_meta["stowage.dev/error"]`` say
  ``insufficient_scope``; the ``WWW-Authenticate`` header is sent on it too
  (RFC 9110 allows it on any response).

The marker only chooses the shape: the call is refused either way, and a
client that sends ``openai/`` metadata without handling the tool-level
challenge still reads an ordinary tool error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from starlette.types import Message, Receive, Scope, Send

from gateway._access import NOT_OPEN, admits
from gateway._auth import TokenVerifier
from gateway._calls import CallContext, challenge_result, error_result, speaks_apps_sdk
from gateway._directory import TenantDirectory
from gateway._errors import AuthError
from gateway._lane import ToolCallLane
from gateway._mcp import SCOPE_KEY
from gateway._metrics import Metrics
from gateway._ratelimit import Bucket, RateLimiter
from gateway._revocations import Revocations, Standing
from gateway._settings import GatewaySettings
from gateway._tools import Catalogues
from gateway._types import READ_SCOPE, WRITE_SCOPE, CorrelationId, Principal, Tenant
from stowage.wire import CORRELATION_ID, new_correlation_id

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: What a client is told about a revoked token (the 401's ``error_description``).
REVOKED = "access to this app was revoked; sign in again to connect"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _respond(
    send: Send,
    status: int,
    body: dict[str, Any],
    headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


#: The answer to a GET: a stateless gateway has nothing to stream.
_NO_STREAM = {
    "jsonrpc": "2.0",
    "id": None,
    "error": {
        "code": -32600,
        "message": "No SSE stream here (stateless server): send requests by POST",
    },
}


def _tool_result(message: dict[str, Any], result: types.CallToolResult) -> dict[str, Any]:
    """The JSON-RPC reply carrying ``result`` for the request ``message``."""
    dumped = result.model_dump(by_alias=True, exclude_none=True, mode="json")
    return {"jsonrpc": "2.0", "id": message.get("id"), "result": dumped}


def _json(body: bytes) -> object:
    """The parsed body, or None when it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


class TooLarge(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, list[Message]]:
    """The whole body (413 past ``limit``) and any non-body message that followed."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), [message]
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), []


class McpGate:
    """ASGI app for ``/t/{tenant}/mcp``; hands admitted requests to ``inner``."""

    def __init__(
        self,
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
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.verifier = verifier
        self.revocations = revocations
        self.limiter = limiter
        self.catalogues = catalogues
        self.metrics = metrics
        self.inner = inner
        self.lane = lane

    def _challenge(
        self,
        tenant: str,
        error: str | None,
        description: str | None = None,
        scope: str | None = None,
    ) -> list[tuple[bytes, bytes]]:
        value = self._challenge_value(tenant, error, description, scope)
        return [(b"www-authenticate", value.encode())]

    def _challenge_value(
        self,
        tenant: str,
        error: str | None,
        description: str | None = None,
        scope: str | None = None,
    ) -> str:
        """The RFC 6750 ``Bearer`` challenge, for the header or the Apps SDK's tool result."""
        parts = [f'resource_metadata="{self.settings.resource_metadata_url(tenant)}"']
        if error:
            parts.insert(0, f'error="{error}"')
        if description:
            parts.append(f'error_description="{description}"')
        parts.append(f'scope="{scope or f"{READ_SCOPE} {WRITE_SCOPE}"}"')
        return "Bearer " + ", ".join(parts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path_params"]["tenant"]
        tenant = self.directory.get(name)
        incoming = _header(scope, b"x-request-id")
        cid = CorrelationId(
            incoming if incoming and CORRELATION_ID.match(incoming) else new_correlation_id()
        )
        label = tenant.name if tenant is not None else "unknown"
        status_seen = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", cid.encode())],
                }
            await send(message)

        try:
            if tenant is None and not self.directory.loaded:
                await _respond(
                    send_with_id,
                    503,
                    {
                        "error": "temporarily_unavailable",
                        "error_description": "the gateway is starting; retry shortly",
                    },
                    [(b"retry-after", b"1")],
                )
                return
            if tenant is None:
                await _respond(
                    send_with_id, 404, {"error": "not_found", "error_description": "unknown tenant"}
                )
                return
            await self._admit(tenant, cid, scope, receive, send_with_id)
        finally:
            self.metrics.http_requests.labels(label, str(status_seen)).inc()

    async def _admit(
        self, tenant: Tenant, cid: CorrelationId, scope: Scope, receive: Receive, send: Send
    ) -> None:
        principal = await self._authenticate(tenant, scope, send)
        if principal is None:
            return
        standing = await self.revocations.standing(tenant, principal)
        if not await self._may_use_app(tenant, principal, standing, cid, scope, receive, send):
            return
        if scope["method"] == "GET":
            await _respond(send, 405, _NO_STREAM, [(b"allow", b"POST")])
            return
        read = await self._body(scope, receive, send)
        if read is None:
            return
        body, trailing = read
        message = _json(body)
        if scope["method"] == "POST" and not await self._authorize_call(
            tenant, principal, message, send, cid, standing
        ):
            return
        await self._forward(
            CallContext(tenant, principal, cid), message, body, trailing, scope, receive, send
        )

    async def _may_use_app(
        self,
        tenant: Tenant,
        principal: Principal,
        standing: Standing,
        cid: CorrelationId,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> bool:
        """Not revoked, and let in by the tenant's launch stage; else refused here."""
        if standing is Standing.REVOKED:
            self.metrics.auth_failures.labels(tenant.name, "revoked").inc()
            await self._refuse_revoked(tenant, cid, scope, receive, send)
            return False
        if not admits(tenant.access, principal):
            self.metrics.auth_failures.labels(tenant.name, "not_open").inc()
            await _respond(
                send,
                403,
                {"error": "access_denied", "error_description": NOT_OPEN},
                self._challenge(tenant.name, "access_denied", NOT_OPEN),
            )
            return False
        return True

    async def _body(
        self, scope: Scope, receive: Receive, send: Send
    ) -> tuple[bytes, list[Message]] | None:
        """The request body within the size limit, or None once 413 is sent."""
        declared = _header(scope, b"content-length")
        limit = self.settings.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(send)
            return None
        try:
            return await _read_body(receive, limit)
        except TooLarge:
            await self._too_large(send)
            return None

    async def _forward(
        self,
        call: CallContext,
        message: object,
        body: bytes,
        trailing: list[Message],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """A plain tool call to the lane; anything else to the MCP transport, body replayed."""
        if not trailing and await self.lane.answer(scope, message, call, send):
            return
        scope[SCOPE_KEY] = call
        replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
        replay += trailing

        async def replay_receive() -> Message:
            return replay.pop(0) if replay else await receive()

        await self.inner(scope, replay_receive, send)

    async def _refuse_revoked(
        self, tenant: Tenant, cid: CorrelationId, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """401 for a revoked grant; from ChatGPT, the Apps SDK's tool-level challenge instead.

        A ``tools/call`` carrying the Apps SDK's metadata gets an ``isError``
        result whose ``_meta["mcp/www_authenticate"]`` holds the same
        ``invalid_token`` challenge, so ChatGPT offers to connect the app again
        from inside the conversation; everything else gets the HTTP 401.
        """
        challenge = self._challenge_value(tenant.name, "invalid_token", REVOKED)
        header = [(b"www-authenticate", challenge.encode())]
        message = await self._tool_call_message(scope, receive)
        if message is not None and speaks_apps_sdk(message.get("params")):
            result = challenge_result("access_revoked", REVOKED, cid, challenge)
            await _respond(send, 200, _tool_result(message, result), header)
            return
        await _respond(send, 401, {"error": "invalid_token", "error_description": REVOKED}, header)

    async def _tool_call_message(self, scope: Scope, receive: Receive) -> dict[str, Any] | None:
        """The request's ``tools/call`` message, or None (not one, too large, malformed)."""
        if scope["method"] != "POST":
            return None
        try:
            body, _ = await _read_body(receive, self.settings.max_body_bytes)
            message = json.loads(body)
        except (TooLarge, ValueError, RecursionError):
            return None
        if isinstance(message, dict) and message.get("method") == "tools/call":
            return message
        return None

    async def _too_large(self, send: Send) -> None:
        await _respond(
            send,
            413,
            {
                "jsonrpc": "2.0",
                "id": None,
                "error": {
                    "code": -32600,
                    "message": f"Request body larger than {self.settings.max_body_bytes} bytes",
                },
            },
        )

    async def _authenticate(self, tenant: Tenant, scope: Scope, send: Send) -> Principal | None:
        raw = _header(scope, b"authorization")
        scheme, _, token = (raw or "").partition(" ")
        if not raw or scheme.lower() != "bearer" or not token.strip():
            self.metrics.auth_failures.labels(tenant.name, "missing").inc()
            await _respond(
                send,
                401,
                {"error": "invalid_request", "error_description": "A bearer token is required"},
                self._challenge(tenant.name, None),
            )
            return None
        try:
            return await self.verifier.verify(token.strip(), tenant)
        except AuthError as e:
            self.metrics.auth_failures.labels(tenant.name, e.reason).inc()
            await _respond(
                send,
                401,
                {"error": "invalid_token", "error_description": e.description},
                self._challenge(tenant.name, "invalid_token", e.description),
            )
            return None

    async def _authorize_call(
        self,
        tenant: Tenant,
        principal: Principal,
        message: object,
        send: Send,
        cid: CorrelationId,
        standing: Standing,
    ) -> bool:
        """Scope, revocations known and rate limit for ``tools/call``; True lets it through.

        Anything but a ``tools/call`` passes, a body that is not JSON included:
        the MCP layer answers it (a JSON-RPC parse error, say).
        """
        if not isinstance(message, dict) or message.get("method") != "tools/call":
            return True
        params = message.get("params")
        tool = params.get("name") if isinstance(params, dict) else None
        needed = self.catalogues.of(tenant).scope_for(tool) if isinstance(tool, str) else None
        if needed is not None and needed not in principal.scopes:
            self.metrics.auth_failures.labels(tenant.name, "scope").inc()
            await self._refuse_scope(
                tenant, message, f"The {tool} tool needs the {needed} scope", needed, cid, send
            )
            return False
        if standing is Standing.UNKNOWN:
            result = error_result(
                "unavailable",
                "the tenant worker is unavailable (its access revocations cannot be read)",
                cid,
                retriable=True,
                retry_after_seconds=1.0,
            )
            await _respond(send, 200, _tool_result(message, result))
            return False
        return await self._within_limits(tenant, principal, message, send)

    async def _refuse_scope(
        self,
        tenant: Tenant,
        message: dict[str, Any],
        description: str,
        needed: str,
        cid: CorrelationId,
        send: Send,
    ) -> None:
        """403 with the step-up challenge; for the Apps SDK, the same as a tool result."""
        challenge = self._challenge_value(tenant.name, "insufficient_scope", description, needed)
        header = [(b"www-authenticate", challenge.encode())]
        if speaks_apps_sdk(message.get("params")):
            result = challenge_result(
                "insufficient_scope", description, cid, challenge, scope=needed
            )
            await _respond(send, 200, _tool_result(message, result), header)
            return
        refusal = {"error": "insufficient_scope", "error_description": description}
        await _respond(send, 403, refusal, header)

    async def _within_limits(
        self, tenant: Tenant, principal: Principal, message: dict[str, Any], send: Send
    ) -> bool:
        """A token from the user's and the tenant's buckets; 429 when either is empty."""
        denial = await self.limiter.acquire(
            [
                Bucket(f"{tenant.name}:u:{principal.identity[:32]}", tenant.per_user, "user"),
                Bucket(f"{tenant.name}:t", tenant.per_tenant, "tenant"),
            ]
        )
        if denial is None:
            return True
        self.metrics.rate_limited.labels(tenant.name, denial.scope).inc()
        retry = max(1, math.ceil(denial.retry_after))
        await _respond(
            send,
            429,
            {
                "jsonrpc": "2.0",
                "id": message.get("id"),
                "error": {
                    "code": -32000,
                    "message": f"Rate limit of the {denial.scope} exceeded; retry after {retry} s",
                    "data": {"retry_after_seconds": retry, "limit": denial.scope},
                },
            },
            [(b"retry-after", str(retry).encode())],
        )
        return False
