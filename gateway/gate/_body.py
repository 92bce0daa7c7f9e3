"""The request body: read once, within the size limit, and replayed to the SDK.

The one reader of a request's body. A body past ``max_body_bytes``, declared
(``Content-Length``) or read, is ``TooLarge``: a refusal whose reply is the
413. What follows the body on the channel (a disconnect, say) is kept, so the
MCP transport behind the gate sees the request as it came.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.types import Message, Receive, Scope

from gateway.gate._asgi import Refused, Reply, header


class TooLarge(Refused):
    """The body is larger than ``limit`` bytes: answered with 413."""

    def __init__(self, limit: int) -> None:
        message = f"Request body larger than {limit} bytes"
        error = {"code": -32600, "message": message}
        super().__init__(Reply(413, {"jsonrpc": "2.0", "id": None, "error": error}))


def _parsed(raw: bytes) -> object:
    """The parsed body, or None when it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


@dataclass(frozen=True)
class Body:
    """A request's whole body, what it says as JSON, and any message that followed it."""

    raw: bytes
    #: The parsed JSON; None when the body is not JSON.
    message: object
    trailing: tuple[Message, ...]

    def replay(self, receive: Receive) -> Receive:
        """A ``receive`` that gives the body (and what followed) again, then ``receive``'s."""
        replay: list[Message] = [{"type": "http.request", "body": self.raw, "more_body": False}]
        replay += self.trailing

        async def replay_receive() -> Message:
            return replay.pop(0) if replay else await receive()

        return replay_receive


async def read_body(scope: Scope, receive: Receive, limit: int) -> Body:
    """The whole body; ``TooLarge`` past ``limit``, refused before reading if declared so."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return _body(b"".join(chunks), (message,))
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return _body(b"".join(chunks), ())


def _body(raw: bytes, trailing: tuple[Message, ...]) -> Body:
    return Body(raw, _parsed(raw), trailing)
