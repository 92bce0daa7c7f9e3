"""The front of the gate: which tenant, which correlation id, and what status went out.

The tenant comes from the path: unknown is 404, except while a starting
gateway is still loading its tenants, when it is 503 with ``Retry-After`` (the
tenant may well exist; the only 5xx the gate sends of its own). The
correlation id is the request's ``X-Request-Id`` when it matches
``stowage.wire.CORRELATION_ID``, else the request's trace id while the gateway
traces (so a log line, an audit row and a trace meet), else a new one; every
answer echoes it.
"""

from __future__ import annotations

from starlette.types import Message, Scope, Send

from gateway._types import CorrelationId, Tenant
from gateway.directory._directory import TenantDirectory
from gateway.gate._asgi import Refused, Reply, header
from stowage.wire import CORRELATION_ID, new_correlation_id

_STARTING = Reply(
    503,
    {
        "error": "temporarily_unavailable",
        "error_description": "the gateway is starting; retry shortly",
    },
    [(b"retry-after", b"1")],
)
_UNKNOWN = Reply(404, {"error": "not_found", "error_description": "unknown tenant"})


def correlation_id(scope: Scope, trace_id: str | None = None) -> CorrelationId:
    """The client's ``X-Request-Id`` if it is a valid correlation id, else ``trace_id``
    (the request's trace, while tracing), else a new one."""
    incoming = header(scope, b"x-request-id")
    if incoming and CORRELATION_ID.match(incoming):
        return CorrelationId(incoming)
    return CorrelationId(trace_id or new_correlation_id())


def known(tenant: Tenant | None, directory: TenantDirectory) -> Tenant:
    """``tenant`` if the directory has it; ``Refused`` with 404, or 503 while still loading."""
    if tenant is not None:
        return tenant
    raise Refused(_UNKNOWN if directory.loaded else _STARTING)


class Answer:
    """``send`` with the correlation id added to the response and its status noted."""

    def __init__(self, send: Send, cid: CorrelationId) -> None:
        self._send = send
        self._cid = cid.encode()
        #: The response's status; 0 until it starts.
        self.status = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message = {
                **message,
                "headers": [*message.get("headers", []), (b"x-request-id", self._cid)],
            }
        await self._send(message)
