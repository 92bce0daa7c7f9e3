"""Raw ASGI for the gate's stages: a request header, a JSON reply, and ``Refused``.

A stage that turns a request away raises ``Refused`` with the reply to send;
the gate (``_gate``) sends it, so no stage writes to the connection itself.
No state here.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]


def header(scope: Scope, name: bytes) -> str | None:
    """The request header ``name`` (lower case), or None when it is absent."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


@dataclass(frozen=True)
class Reply:
    """A JSON answer: status, body and any headers beyond the content ones."""

    status: int
    body: dict[str, Any]
    headers: Headers = ()

    async def send_to(self, send: Send) -> None:
        payload = json.dumps(self.body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    *self.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class Refused(Exception):
    """A stage turned the request away; ``reply`` is what the client is told."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply
