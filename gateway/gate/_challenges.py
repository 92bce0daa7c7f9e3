"""RFC 6750 ``Bearer`` challenges, and the two shapes of a refusal that carries one.

Every refusal of a token names the tenant's protected-resource metadata
(``resource_metadata=``), so a client can find where to sign in. Two
refusals, a revoked token and a token that lacks a tool's scope (``scope=``
then the one scope needed), are sent in one of two shapes:

- by default, the HTTP status (401, 403) with the challenge in
  ``WWW-Authenticate``; for insufficient scope, the MCP authorization
  specification's answer at runtime, from which MCP clients (the Python and
  TypeScript SDKs, the Inspector) start step-up authorization;
- when the request is a ``tools/call`` carrying the OpenAI Apps SDK's client
  metadata (``params._meta["openai/…"]``, which ChatGPT sends with every tool
  call), HTTP 200 with an ``isError`` tool result whose
  ``_meta["mcp/www_authenticate"]`` lists the challenge (the shape the Apps
  SDK documents for asking the user to link the account again from inside a
  tool call) and whose text and ``_meta["stowage.dev/error"]`` name the error;
  the ``WWW-Authenticate`` header is sent on it too (RFC 9110 allows it on any
  response).

The marker only chooses the shape: the request is refused either way, and a
client that sends ``openai/`` metadata without handling the tool-level
challenge still reads an ordinary tool error.
"""

from __future__ import annotations

from typing import Any

from gateway._settings import GatewaySettings
from gateway._types import READ_SCOPE, WRITE_SCOPE, CorrelationId
from gateway.gate._asgi import Headers, Reply
from gateway.gate._tool_call import ToolCall
from gateway.surface._calls import challenge_result


def www_authenticate(challenge: str) -> Headers:
    return [(b"www-authenticate", challenge.encode())]


class Challenges:
    """The challenges of one gateway's tenants (their metadata URLs come from the settings)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings

    def value(
        self,
        tenant: str,
        error: str | None,
        description: str | None = None,
        scope: str | None = None,
    ) -> str:
        """The ``Bearer`` challenge, for the header or the Apps SDK's tool result."""
        parts = [f'resource_metadata="{self._settings.resource_metadata_url(tenant)}"']
        if error:
            parts.insert(0, f'error="{error}"')
        if description:
            parts.append(f'error_description="{description}"')
        parts.append(f'scope="{scope or f"{READ_SCOPE} {WRITE_SCOPE}"}"')
        return "Bearer " + ", ".join(parts)

    def header(
        self,
        tenant: str,
        error: str | None,
        description: str | None = None,
        scope: str | None = None,
    ) -> Headers:
        """``WWW-Authenticate`` with the challenge."""
        return www_authenticate(self.value(tenant, error, description, scope))


def challenge_reply(
    call: ToolCall | None,
    status: int,
    error: str,
    description: str,
    challenge: str,
    *,
    code: str,
    cid: CorrelationId,
    **details: Any,
) -> Reply:
    """``status`` with ``challenge``; for an Apps SDK tool call, the tool-level ``code`` error."""
    headers = www_authenticate(challenge)
    if call is not None and call.speaks_apps_sdk:
        result = challenge_result(code, description, cid, challenge, **details)
        return Reply(200, call.reply(result), headers)
    return Reply(status, {"error": error, "error_description": description}, headers)
