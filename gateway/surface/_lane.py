"""The tool-call lane: a plain ``tools/call`` or ``tools/list`` answered without a per-request
MCP session.

Why: in stateless mode the SDK serves every POST by building a transport, a
JSON-RPC dispatcher, a connection and a server task for it, and tearing them
down again. Under load that machinery, not the call, was most of the gateway's
CPU (py-spy: the session manager, dispatcher and runner together well over half
of each request). A tool call needs none of it: one request in, one result out.

The lane takes only the plainest request and answers it with the SDK's own
pieces, so the wire is the SDK's:

- a POST whose Host and Origin pass the SDK's transport-security check, whose
  ``Content-Type`` is JSON and whose ``Accept`` allows JSON (the transport's
  checks in JSON-response mode);
- a protocol version from the handshake era, or none (the SDK's default then),
  the versions the SDK's stateless legacy path serves; 2026-era requests keep
  the SDK's own single-exchange path;
- one JSON-RPC request (not a batch, notification or response) for
  ``tools/call`` whose params pass the SDK's per-version request validation, or
  for ``tools/list`` with no params at all (no cursor: the catalogue is one page);
- the result goes through the SDK's per-version result sieve
  (``serialize_server_result``) as the SDK's runner does. A ``tools/list``
  result is the same for every caller of a tenant, so its JSON is made once per
  catalogue and protocol version and kept with the catalogue (which is rebuilt
  when the tenant's spec changes).

Anything else goes to the SDK, which answers it as always, errors included, so
the lane never decides what a malformed or unusual request gets.

While tracing is on, the call is a ``tools/call <tool>`` span with the SDK's own
attributes (``mcp.method.name``, ``gen_ai.tool.name``), as the SDK's path opens,
so a trace looks the same whichever path served it (a tool the tenant does not
have is named ``unknown``, never the string the client sent).
"""

from __future__ import annotations

import json
import logging
from contextlib import AbstractContextManager
from typing import Any

import mcp_types as types
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import methods
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Scope, Send

from gateway.surface._calls import CallContext, ToolCalls
from gateway.surface._mcp import call_tool
from gateway.surface._tools import Catalogues
from stowage import tracing

log = logging.getLogger(__name__)

_SPANS = tracing.Tracer("gateway")
_TOOLS_CALL = "tools/call"
_TOOLS_LIST = "tools/list"
_ENVELOPE = frozenset({"jsonrpc", "id", "method", "params"})


def _protocol_version(request: Request) -> str | None:
    """The request's handshake-era protocol version, the default if absent; None otherwise."""
    version = request.headers.get("mcp-protocol-version")
    if version is None:
        return types.DEFAULT_NEGOTIATED_VERSION
    return version if version in HANDSHAKE_PROTOCOL_VERSIONS else None


def _is_json(content_type: str) -> bool:
    return any(part.strip() == "application/json" for part in content_type.split(";")[0].split(","))


class ToolCallLane:
    def __init__(
        self, calls: ToolCalls, catalogues: Catalogues, security: TransportSecuritySettings
    ) -> None:
        self._calls = calls
        self._catalogues = catalogues
        self._security = TransportSecurityMiddleware(security)

    async def _headers_pass(self, request: Request) -> bool:
        if await self._security.validate_request(request, is_post=True) is not None:
            return False
        has_json, _ = check_accept_headers(request)
        return has_json and _is_json(request.headers.get("content-type", ""))

    def _request_id(self, message: object) -> str | int | None:
        """The id of a plain JSON-RPC request (``jsonrpc`` 2.0, a string or integer id)."""
        if not isinstance(message, dict) or not message.keys() <= _ENVELOPE:
            return None
        request_id = message.get("id")
        if isinstance(request_id, bool) or not isinstance(request_id, (str, int)):
            return None
        return request_id if message.get("jsonrpc") == "2.0" else None

    def _params(self, message: dict[str, Any], version: str) -> types.CallToolRequestParams | None:
        """A ``tools/call``'s params, when they pass the SDK's validation (None otherwise)."""
        params = message.get("params")
        if message.get("method") != _TOOLS_CALL:
            return None
        if params is not None and not isinstance(params, dict):
            return None
        try:
            methods.validate_client_request(_TOOLS_CALL, version, params)
            return types.CallToolRequestParams.model_validate(params or {}, by_name=False)
        except (ValidationError, KeyError, ValueError):
            return None

    def _plain_listing(self, message: dict[str, Any], version: str) -> bool:
        """Whether ``message`` is a ``tools/list`` with no params at all (no cursor, no _meta)."""
        if message.get("method") != _TOOLS_LIST or message.get("params") not in (None, {}):
            return False
        try:
            methods.validate_client_request(_TOOLS_LIST, version, message.get("params"))
        except (ValidationError, KeyError, ValueError):
            return False
        return True

    def _listing_json(self, call: CallContext, version: str) -> bytes:
        """The tenant's ``tools/list`` result as the SDK's sieve writes it; made once per
        catalogue and protocol version (a catalogue lives until the tenant's spec changes)."""
        catalogue = self._catalogues.of(call.tenant)
        found = catalogue.listing_json.get(version)
        if found is None:
            dumped = catalogue.listing.model_dump(by_alias=True, mode="json", exclude_none=True)
            result = methods.serialize_server_result(_TOOLS_LIST, version, dumped)
            found = json.dumps(result, separators=(",", ":")).encode()
            catalogue.listing_json[version] = found
        return found

    def _span(
        self, call: CallContext, params: types.CallToolRequestParams
    ) -> AbstractContextManager[tracing.Span]:
        """The call's span, named as the SDK names its own; a null one while not tracing."""
        if not tracing.enabled():
            return _SPANS.span(_TOOLS_CALL)
        known = params.name in self._catalogues.of(call.tenant).tools
        tool = params.name if known else "unknown"
        attributes = {
            "mcp.method.name": _TOOLS_CALL,
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "stowage.tenant": call.tenant.name,
            "stowage.tool": tool,
        }
        return _SPANS.span(f"{_TOOLS_CALL} {tool}", attributes)

    async def answer(self, scope: Scope, message: object, call: CallContext, send: Send) -> bool:
        """Answer ``message`` if it is a plain ``tools/call`` or ``tools/list``; False leaves
        it to the SDK."""
        if scope["method"] != "POST":
            return False
        request = Request(scope)
        version = _protocol_version(request)
        if version is None or self._request_id(message) is None:
            return False
        assert isinstance(message, dict)
        if self._plain_listing(message, version):
            if not await self._headers_pass(request):
                return False
            request_id = json.dumps(message["id"]).encode()
            listing = self._listing_json(call, version)
            await _send_json(
                send, b'{"jsonrpc":"2.0","id":' + request_id + b',"result":' + listing + b"}"
            )
            return True
        params = self._params(message, version)
        if params is None or not await self._headers_pass(request):
            return False
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
        try:
            with self._span(call, params):
                result = await call_tool(self._calls, self._catalogues, call, params)
            dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
            reply["result"] = methods.serialize_server_result(_TOOLS_CALL, version, dumped)
        except MCPError as e:
            reply["error"] = e.error.model_dump(by_alias=True, mode="json", exclude_none=True)
        except Exception:
            log.exception("tools/call failed", extra={"correlation_id": call.correlation_id})
            reply["error"] = {"code": types.INTERNAL_ERROR, "message": "Internal error"}
        await _send_json(send, json.dumps(reply, separators=(",", ":")).encode())
        return True


async def _send_json(send: Send, payload: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
