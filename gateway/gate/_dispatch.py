"""Where an admitted request goes: the tool-call lane, or the SDK's MCP transport.

A plain ``tools/call`` is answered by the lane (``_lane``) without a
per-request MCP session. Anything else goes to the SDK's transport (``inner``)
with the ``CallContext`` in the ASGI scope (``_mcp.SCOPE_KEY``) and the body
the gate read replayed to it. A GET (the optional server-to-client SSE
stream) goes nowhere: 405, since a stateless gateway never has anything to
send on it and an open one would only hold a connection.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from gateway.gate._asgi import ASGIApp, Refused, Reply
from gateway.gate._body import Body
from gateway.surface._calls import CallContext
from gateway.surface._lane import ToolCallLane
from gateway.surface._mcp import SCOPE_KEY

#: The answer to a GET: a stateless gateway has nothing to stream.
_NO_STREAM = Reply(
    405,
    {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32600,
            "message": "No SSE stream here (stateless server): send requests by POST",
        },
    },
    [(b"allow", b"POST")],
)


def refuse_stream(scope: Scope) -> None:
    """``Refused`` with 405 for a GET: there is no stream to open."""
    if scope["method"] == "GET":
        raise Refused(_NO_STREAM)


class Dispatch:
    def __init__(self, lane: ToolCallLane, inner: ASGIApp) -> None:
        self._lane = lane
        self._inner = inner

    async def forward(
        self, ctx: CallContext, body: Body, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """A plain tool call to the lane; anything else to the MCP transport, body replayed."""
        if not body.trailing and await self._lane.answer(scope, body.message, ctx, send):
            return
        scope[SCOPE_KEY] = ctx
        await self._inner(scope, body.replay(receive), send)
