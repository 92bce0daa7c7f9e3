"""The MCP surface: one low-level ``mcp`` Server shared by every tenant.

Why the low-level ``Server`` and not ``MCPServer``: ``MCPServer`` derives each
tool's schema from a Python function's signature, while a tenant's typed tools
come from JSON Schemas in its settings and change when the tenant directory
reloads. The low-level server lets ``tools/list`` and ``tools/call`` answer per
request from the tenant's catalogue, with no per-tenant server objects.

Why stateless Streamable HTTP: a gateway runs as several replicas behind a load
balancer. With sessions, a request that lands on a replica that did not see
the ``initialize`` gets "session not found". Stateless mode needs no session
affinity and keeps nothing between requests; everything a call needs (tenant,
verified caller, correlation id) arrives with the request. JSON responses (not
SSE) suit tool calls that answer once and keep the per-request cost low.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError

from gateway.surface._calls import CallContext, ToolCalls
from gateway.surface._tools import Catalogues
from stowage import apps

#: Where the HTTP gate leaves the CallContext in the ASGI scope.
SCOPE_KEY = "stowage.call"
#: JSON-RPC error for a resource the tenant does not have (the MCP specification's code).
RESOURCE_NOT_FOUND = -32002

INSTRUCTIONS = (
    "Durable storage for the signed-in user of this app. Save things the user wants kept "
    "across conversations with the *_save tools, read them back with *_get and *_list, and "
    "keep the ids and versions from results to update or delete the same objects later."
)


def _call_context(ctx: ServerRequestContext[Any, Any]) -> CallContext:
    request = ctx.request
    found = getattr(request, "scope", {}).get(SCOPE_KEY) if request is not None else None
    if not isinstance(found, CallContext):
        # Only reachable if the app is mounted without the gate: refuse, never serve anonymously.
        raise MCPError(code=types.INTERNAL_ERROR, message="request did not pass the gateway")
    return found


async def call_tool(
    calls: ToolCalls, catalogues: Catalogues, call: CallContext, params: types.CallToolRequestParams
) -> types.CallToolResult:
    """The one way a ``tools/call`` is served, by this server or by the gateway's tool-call lane."""
    catalogue = catalogues.of(call.tenant)
    return await calls.call(call, catalogue, params.name, dict(params.arguments or {}))


def build_server(calls: ToolCalls, catalogues: Catalogues) -> Server[Any]:
    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return catalogues.of(_call_context(ctx).tenant).listing

    async def on_call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return await call_tool(calls, catalogues, _call_context(ctx), params)

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return catalogues.of(_call_context(ctx).tenant).components.listing

    async def list_resource_templates(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        _call_context(ctx)
        return types.ListResourceTemplatesResult(resource_templates=[])

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        found = catalogues.of(_call_context(ctx).tenant).components.read(str(params.uri))
        if found is None:
            # The same answer whether the URI is another tenant's or nobody's: no existence leak.
            raise MCPError(code=RESOURCE_NOT_FOUND, message="Resource not found")
        return found

    server: Server[Any] = Server(
        "stowage",
        version="0.1.0",
        title="Stowage",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
    )
    # MCP Apps (SEP-2133 extension map): hosts that speak it render the components.
    server.extensions[apps.EXTENSION_ID] = {"mimeTypes": [apps.MIME_TYPE]}
    return server


def transport_security(
    *, allowed_hosts: list[str], allowed_origins: list[str]
) -> TransportSecuritySettings:
    """Host and Origin checks (DNS rebinding), shared by the SDK transport and the lane."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=allowed_hosts,
        allowed_origins=allowed_origins,
    )


def build_session_manager(
    server: Server[Any], *, security: TransportSecuritySettings, max_body_bytes: int
) -> StreamableHTTPSessionManager:
    return StreamableHTTPSessionManager(
        app=server,
        json_response=True,
        stateless=True,
        security_settings=security,
        max_request_body_size=max_body_bytes,
    )
