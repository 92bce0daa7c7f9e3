"""A request's ``tools/call``: the one place the gate tells a tool call from the rest.

Only a ``tools/call`` spends the tool-call budget, needs its tool's scope and
may be refused in the Apps SDK's in-band shape; protocol chatter (initialize,
notifications, ping, tools/list) and bodies that are not JSON pass untouched,
for the MCP layer to answer. The tool-call lane (``_lane``) makes its own,
narrower choice later: which tool calls it answers without the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mcp_types as types
from starlette.types import Receive, Scope

from gateway.gate._body import TooLarge, read_body
from gateway.surface._calls import speaks_apps_sdk

TOOLS_CALL = "tools/call"


@dataclass(frozen=True)
class ToolCall:
    """A JSON-RPC ``tools/call`` request, as the gate reads it."""

    message: dict[str, Any]

    @property
    def request_id(self) -> object:
        return self.message.get("id")

    @property
    def tool(self) -> str | None:
        """The named tool, or None when the params name none (the SDK refuses those)."""
        params = self.message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        return name if isinstance(name, str) else None

    @property
    def speaks_apps_sdk(self) -> bool:
        """Whether it carries the OpenAI Apps SDK's ``openai/…`` metadata."""
        return speaks_apps_sdk(self.message.get("params"))

    def reply(self, result: types.CallToolResult) -> dict[str, Any]:
        """The JSON-RPC reply carrying ``result`` for this request."""
        dumped = result.model_dump(by_alias=True, exclude_none=True, mode="json")
        return {"jsonrpc": "2.0", "id": self.request_id, "result": dumped}


def tool_call(scope: Scope, message: object) -> ToolCall | None:
    """The ``tools/call`` a POST's parsed body holds; None for anything else."""
    if scope["method"] != "POST":
        return None
    if isinstance(message, dict) and message.get("method") == TOOLS_CALL:
        return ToolCall(message)
    return None


async def peek_tool_call(scope: Scope, receive: Receive, limit: int) -> ToolCall | None:
    """The request's ``tools/call``, read from its body only to shape a refusal.

    None also when the body is too large: the request is refused anyway, and
    a refusal is no place for a 413.
    """
    if scope["method"] != "POST":
        return None  # nothing else carries a tool call: leave its body unread
    try:
        body = await read_body(scope, receive, limit)
    except TooLarge:
        return None
    return tool_call(scope, body.message)
