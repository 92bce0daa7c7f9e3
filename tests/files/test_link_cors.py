"""A component on any origin uses its links from a browser: CORS answers every origin on link
paths, without credentials, while the MCP endpoint keeps the gateway's own CORS rules."""

from __future__ import annotations

import httpx
import pytest

from tests.files.conftest import Platform, random_bytes, sha256

pytestmark = [pytest.mark.anyio]

#: A host's sandbox origin, as a component runs on it (no gateway setting names it).
SANDBOX = "https://notes-app.sandbox.example"


async def test_a_view_on_a_sandbox_origin_uploads_and_reads_back_through_its_links(
    platform: Platform, user: str
) -> None:
    data = random_bytes(70_000)
    created = await platform.upload_link(user, data, sha256=sha256(data))
    link = created["upload"]
    async with httpx.AsyncClient(timeout=30) as http:
        # The browser asks first: a PUT with a content type is not a simple request.
        preflight = await http.options(
            link["url"],
            headers={
                "origin": SANDBOX,
                "access-control-request-method": "PUT",
                "access-control-request-headers": "content-type",
            },
        )
        assert preflight.status_code == 204, preflight.text
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "PUT" in preflight.headers["access-control-allow-methods"]
        assert "content-type" in preflight.headers["access-control-allow-headers"]
        assert "access-control-allow-credentials" not in preflight.headers
        # The preflight is no use of the link: the file still waits for its bytes.
        got = await platform.tool(user, "files_get", {"id": created["file"]["id"]})
        assert got.structured_content["file"]["status"] == "awaiting_upload"

        put = await http.put(
            link["url"], content=data, headers={**link["headers"], "origin": SANDBOX}
        )
        assert put.status_code == 200, put.text
        assert put.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in put.headers

        got = await platform.tool(user, "files_get", {"id": created["file"]["id"]})
        url = got.structured_content["download"]["url"]
        part = await http.get(url, headers={"origin": SANDBOX, "range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == data[:100]
        assert part.headers["access-control-allow-origin"] == "*"
        # The view may read how much it got and what to call the file.
        exposed = part.headers["access-control-expose-headers"]
        assert {"content-range", "content-disposition"} <= {h.strip() for h in exposed.split(",")}

        # A refused link is readable too, so the view can show why.
        forged = url.replace("&s=", "&s=A")
        assert forged != url
        refused = await http.get(forged, headers={"origin": SANDBOX})
        assert refused.status_code == 403
        assert refused.headers["access-control-allow-origin"] == "*"


async def test_the_mcp_endpoint_keeps_the_gateways_own_cors_rules(platform: Platform) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        preflight = await http.options(
            platform.gateway.url("acme"),
            headers={
                "origin": SANDBOX,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
    # Not an allowed origin (--allowed-origins): the browser gets no permission to call.
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
