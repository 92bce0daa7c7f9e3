"""A reverse proxy that adds a bearer token: how a client that cannot send one reaches a gateway.

The official conformance suite has no option for an ``Authorization`` header.
Rather than a development switch that turns authentication off (an
unauthenticated path that could leak into production), the tests put this
proxy in front of a real gateway: it forwards every request unchanged (method,
path, query, body, and the ``Host`` and ``Origin`` headers the client sent, so
the gateway's DNS-rebinding check still sees them) and adds
``Authorization: Bearer <token>``. It lives in the tests only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stowage_testing.issuer import serve_in_thread
from stowage_testing.tools import free_port

#: Hop-by-hop and framing headers a proxy must not copy (RFC 9110 §7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "content-length",
    }
)  # fmt: skip


@dataclass(frozen=True)
class TokenProxy:
    port: int
    upstream: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path


def _app(upstream: str, token: str) -> Starlette:
    client = httpx.AsyncClient(base_url=upstream, timeout=30)

    async def forward(request: Request) -> Response:
        headers = [
            (k, v)
            for k, v in request.headers.items()
            if k not in _HOP_BY_HOP and k != "authorization"
        ]
        headers.append(("authorization", f"Bearer {token}"))
        upstream_response = await client.request(
            request.method,
            request.url.path,
            params=request.url.query or None,
            headers=headers,
            content=await request.body(),
        )
        return Response(
            upstream_response.content,
            status_code=upstream_response.status_code,
            headers={k: v for k, v in upstream_response.headers.items() if k not in _HOP_BY_HOP},
        )

    methods = ["GET", "POST", "DELETE", "OPTIONS", "PUT", "PATCH", "HEAD"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


@contextmanager
def token_proxy(upstream: str, token: str) -> Iterator[TokenProxy]:
    """Serve the proxy on a free loopback port for the duration of the block."""
    port = free_port()
    with serve_in_thread(_app(upstream, token), port):
        yield TokenProxy(port, upstream)
