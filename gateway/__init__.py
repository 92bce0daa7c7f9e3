"""The Stowage gateway: the MCP endpoint ChatGPT talks to, one per tenant.

It authenticates each request against the tenant's OAuth issuer, applies the
tenant's rate limits and forwards tool calls over gRPC to the tenant's worker.
It never touches a database and never passes a token on.

Layers (each imports only from the ones below it; ``.importlinter`` keeps them):

- entry points: ``_cli`` (``stowage gateway``), ``_access_cli`` (``stowage
  access``), ``_processes`` (``--processes N``: a supervisor and its gateway
  processes), ``_app`` (the ASGI app; extra routes, such as the dev platform's
  authorization server, are passed in);
- ``gate``: the request's stages in order (``_gate`` runs them: ``_front``
  finds the tenant, ``_bearer`` authenticates, ``_admission`` applies
  revocations and the launch stage, ``_body`` reads the body once,
  ``_tool_call`` recognises a ``tools/call``, ``_call_checks`` checks its scope
  and ``_limits`` its rate, ``_dispatch`` hands it on; ``_challenges`` shapes
  refusals, ``_asgi`` holds the plain ASGI pieces);
- ``surface``: the MCP surface: ``_lane`` (a plain ``tools/call`` answered
  without a per-request MCP session), ``_mcp`` (the SDK's server), ``_calls``
  (a tool call → its operation → a tool result), ``_tools`` (the tool
  catalogue of a tenant, from the table in ``_tool_table``, whose rows name
  their ``_operations``);
- ``auth`` (token checks: ``_auth`` over ``_jwks`` and ``_introspection``;
  ``_revocations``, pushed between replicas by ``_revocation_bus``; the launch
  stage in ``_access``) beside ``directory`` (the tenants the gateway serves:
  ``_directory``, and its sources ``_tenant_file``, YAML or JSON read by
  ``_tenant_entries`` in a short-lived process so a reload never holds the
  event loop, and ``_kube_source``, Tenant resources watched through
  ``_kube_client``, a small httpx client, with ``_kube_config``: a kubeconfig
  or the pod's service account);
- adapters: ``forwarding`` (``_worker``, the gRPC client of the tenant's
  worker), ``_ratelimit`` (in-process and Redis token buckets), ``_metrics``;
- plain values, no I/O: ``_types``, ``_settings``, ``_errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway._app import create_app
    from gateway._settings import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy: `stowage worker ...` imports gateway._cli to build its parser and
    # must not pay for the gateway's dependencies (mcp, grpc, redis) on the way.
    if name == "create_app":
        from gateway._app import create_app

        return create_app
    if name == "GatewaySettings":
        from gateway._settings import GatewaySettings

        return GatewaySettings
    raise AttributeError(name)
