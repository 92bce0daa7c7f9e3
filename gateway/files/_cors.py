"""CORS for signed file links: any origin may use a link, none may send credentials.

A component uploads to and downloads from its links with ``fetch`` from the
host's sandbox origin (on ChatGPT a per-app origin the tenant cannot list in
advance), so the gateway's own CORS rules (``--allowed-origins``, for browser
MCP clients) would refuse it. A link needs no such rule: it is itself the
credential, bound to the tenant, user, file (or the user's export archive,
``/t/<tenant>/files/export``, which this path covers too), method and expiry,
and the gateway sets no cookies. So link paths answer every origin with
``Access-Control-Allow-Origin: *`` and never ``Allow-Credentials`` (a browser
then sends no cookies or HTTP auth with the request), as object stores do for
presigned URLs. Everything else goes to the app's own CORS rules unchanged.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: ``/t/<tenant>/files/<file>``, the links' path (``gateway._app`` routes it), and with
#: ``export`` for ``<file>`` the export archive's.
LINK_PATH = re.compile(r"^/t/[^/]+/files/[^/]+$")
METHODS = "GET, HEAD, PUT"
#: What a view may send: the body's type, a byte range, its own request id.
REQUEST_HEADERS = "content-type, range, x-request-id"
#: What a view may read of the answer beside the CORS-safelisted headers.
EXPOSED_HEADERS = (
    "content-disposition, content-length, content-range, accept-ranges, etag, "
    "x-request-id, retry-after"
)
#: How long a browser may reuse a preflight's answer, seconds.
MAX_AGE = "600"
_ANSWER = {
    "access-control-allow-origin": "*",
    "access-control-expose-headers": EXPOSED_HEADERS,
}


class LinkCors:
    """Outermost middleware: CORS of file link paths; other paths pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not LINK_PATH.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if "origin" not in headers:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            preflight = Response(
                status_code=204,
                headers={
                    "access-control-allow-origin": "*",
                    "access-control-allow-methods": METHODS,
                    "access-control-allow-headers": REQUEST_HEADERS,
                    "access-control-max-age": MAX_AGE,
                },
            )
            await preflight(scope, receive, send)
            return

        async def answered(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name in [k for k in out if k.startswith("access-control-")]:
                    del out[name]
                out.update(_ANSWER)
            await send(message)

        await self.app(scope, receive, answered)
