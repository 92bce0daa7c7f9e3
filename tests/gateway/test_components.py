"""Components (MCP Apps): served per tenant as ui:// resources, linked from their tools.

A real gateway reading a tenants file, real workers on PostgreSQL, raw JSON-RPC
(the wire as a host sees it) and the ``mcp`` SDK client.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stowage_testing.gateway import (
    GatewayProcess,
    Issuer,
    mcp_client,
    post,
    rpc,
    running_gateway,
    tenant_entry,
)
from tests.gateway.conftest import WorkerFor

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

NOTES_VIEW = """<!doctype html><html><head><title>Notes</title>
<link rel="stylesheet" href="https://cdn.example.com/notes.css"></head>
<body><main id="app">Notes</main><script>console.log("inline")</script></body></html>"""
OTHER_VIEW = "<!doctype html><html><body><p>globex</p></body></html>"


def _notes_component(html: str = NOTES_VIEW) -> dict[str, Any]:
    return {
        "name": "notes-board",
        "title": "Notes",
        "description": "The user's notes, editable.",
        "html": html,
        "tools": ["notes_list", "notes_get", "notes_save"],
        "appOnly": ["notes_delete"],
        "domains": {
            "connect": ["https://api.example.com"],
            "resource": ["https://cdn.example.com"],
        },
        "prefersBorder": True,
    }


def _tenants(
    gateway: GatewayProcess, issuer: Issuer, worker_for: WorkerFor, acme_view: str
) -> list[dict[str, Any]]:
    return [
        tenant_entry(
            "acme", gateway, issuer, worker_for("acme").address,
            components=[_notes_component(acme_view)],
        ),
        tenant_entry(
            "globex", gateway, issuer, worker_for("globex").address,
            components=[{"name": "board", "html": OTHER_VIEW, "tools": ["items_list"]}],
            files={"maxFileBytes": "1Mi"},
        ),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def apps_gateway(
    gateway: GatewayProcess,
    worker_for: WorkerFor,
    issuer: Issuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    # After the session's gateway, which starts (and owns) both tenants' workers.
    workdir: Path = tmp_path_factory.mktemp("apps-gateway")
    g = GatewayProcess(workdir=workdir)
    g.write_tenants(_tenants(g, issuer, worker_for, NOTES_VIEW))
    with running_gateway(workdir, port=g.port) as started:
        yield started


def _token(gateway: GatewayProcess, issuer: Issuer, tenant: str = "acme") -> str:
    return issuer.token(gateway.url(tenant), subject=f"user-{uuid.uuid4().hex[:8]}")


def _call(
    gateway: GatewayProcess, token: str, method: str, params: Any = None, tenant: str = "acme"
) -> dict[str, Any]:
    reply = post(gateway.url(tenant), rpc(method, params), token)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _restore(gateway: GatewayProcess, issuer: Issuer, worker_for: WorkerFor, uri: str) -> None:
    """Write the module's tenants back and wait until the gateway serves ``uri`` again."""
    gateway.write_tenants(_tenants(gateway, issuer, worker_for, NOTES_VIEW))
    token = _token(gateway, issuer)
    deadline = time.monotonic() + 10
    while _tools(gateway, token)["notes_get"]["_meta"]["ui"]["resourceUri"] != uri:
        assert time.monotonic() < deadline, "the gateway did not take the tenants back"
        time.sleep(0.1)


def _tools(gateway: GatewayProcess, token: str, tenant: str = "acme") -> dict[str, dict[str, Any]]:
    listed = _call(gateway, token, "tools/list", tenant=tenant)["result"]["tools"]
    return {t["name"]: t for t in listed}


def test_the_server_advertises_resources_and_the_apps_extension(
    apps_gateway: GatewayProcess, issuer: Issuer
) -> None:
    token = _token(apps_gateway, issuer)
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "host", "version": "1"},
    }
    legacy = _call(apps_gateway, token, "initialize", params)["result"]["capabilities"]
    assert "resources" in legacy
    # The extension map is a 2026-era field: server/discover carries it.
    reply = post(
        apps_gateway.url("acme"), rpc("server/discover", {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }}), token,
        **{"mcp-protocol-version": "2026-07-28", "mcp-method": "server/discover"},
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    capabilities = reply.json()["result"]["capabilities"]
    assert "resources" in capabilities
    assert capabilities["extensions"]["io.modelcontextprotocol/ui"] == {
        "mimeTypes": ["text/html;profile=mcp-app"]
    }


def test_linked_tools_carry_the_resource_uri_and_chatgpts_aliases(
    apps_gateway: GatewayProcess, issuer: Issuer
) -> None:
    tools = _tools(apps_gateway, _token(apps_gateway, issuer))
    uri = tools["notes_get"]["_meta"]["ui"]["resourceUri"]
    assert uri.startswith("ui://components/notes-board/")
    for name in ("notes_list", "notes_get", "notes_save"):
        meta = tools[name]["_meta"]
        assert meta["ui"] == {"resourceUri": uri, "visibility": ["model", "app"]}
        assert meta["ui/resourceUri"] == uri
        assert meta["openai/outputTemplate"] == uri
        assert meta["openai/widgetAccessible"] is True
        assert meta["securitySchemes"][0]["type"] == "oauth2"  # kept beside the link
    # App-only: listed (the host must know it to let the view call it) but marked for the
    # host to keep from the model, in both vocabularies.
    delete = tools["notes_delete"]["_meta"]
    assert delete["ui"] == {"visibility": ["app"]}
    assert delete["openai/visibility"] == "private"
    assert "openai/outputTemplate" not in delete
    # Tools no component names carry no UI keys at all.
    assert set(tools["items_save"]["_meta"]) == {"securitySchemes"}


def test_resources_list_and_read_serve_the_tenants_own_component(
    apps_gateway: GatewayProcess, issuer: Issuer
) -> None:
    token = _token(apps_gateway, issuer)
    resources = _call(apps_gateway, token, "resources/list")["result"]["resources"]
    assert [r["name"] for r in resources] == ["notes-board"]
    listed = resources[0]
    assert listed["mimeType"] == "text/html;profile=mcp-app"
    assert listed["title"] == "Notes"
    assert listed["size"] == len(NOTES_VIEW.encode())
    read = _call(apps_gateway, token, "resources/read", {"uri": listed["uri"]})["result"]
    [content] = read["contents"]
    assert content["uri"] == listed["uri"]
    assert content["mimeType"] == "text/html;profile=mcp-app"
    assert content["text"] == NOTES_VIEW
    assert content["_meta"]["ui"] == {
        "csp": {
            "connectDomains": ["https://api.example.com"],
            "resourceDomains": ["https://cdn.example.com"],
        },
        "prefersBorder": True,
    }
    assert content["_meta"]["openai/widgetCSP"]["connect_domains"] == ["https://api.example.com"]
    assert content["_meta"]["openai/widgetPrefersBorder"] is True
    templates = _call(apps_gateway, token, "resources/templates/list")["result"]
    assert templates["resourceTemplates"] == []


def test_a_tenant_that_keeps_files_lets_its_components_reach_their_links(
    apps_gateway: GatewayProcess, issuer: Issuer
) -> None:
    # globex keeps files: its links are on the gateway's origin, so every component of
    # globex may connect to it (upload, download) and load from it (an <img> of a file)
    # without declaring it. acme keeps none and gets only its own domains (above).
    token = _token(apps_gateway, issuer, "globex")
    [listed] = _call(apps_gateway, token, "resources/list", tenant="globex")["result"]["resources"]
    read = _call(apps_gateway, token, "resources/read", {"uri": listed["uri"]}, "globex")
    meta = read["result"]["contents"][0]["_meta"]
    origin = apps_gateway.base
    assert meta["ui"]["csp"] == {"connectDomains": [origin], "resourceDomains": [origin]}
    assert meta["openai/widgetCSP"]["connect_domains"] == [origin]
    assert meta["openai/widgetCSP"]["resource_domains"] == [origin]
    assert listed["_meta"] == meta


def test_reading_another_tenants_or_an_unknown_uri_is_the_same_not_found(
    apps_gateway: GatewayProcess, issuer: Issuer
) -> None:
    globex_token = _token(apps_gateway, issuer, "globex")
    globex_uri = _call(apps_gateway, globex_token, "resources/list", tenant="globex")["result"][
        "resources"
    ][0]["uri"]
    assert (
        _call(apps_gateway, globex_token, "resources/read", {"uri": globex_uri}, "globex")[
            "result"
        ]["contents"][0]["text"]
        == OTHER_VIEW
    )
    token = _token(apps_gateway, issuer)
    answers = [
        _call(apps_gateway, token, "resources/read", {"uri": uri})
        for uri in (
            globex_uri,
            "ui://components/notes-board/0000000000000000",
            "file:///etc/passwd",
        )
    ]
    for answer in answers:
        assert "result" not in answer
        assert answer["error"] == {"code": -32002, "message": "Resource not found"}


async def test_the_sdk_client_lists_and_reads_components(
    apps_gateway: GatewayProcess, issuer: Issuer
) -> None:
    async with mcp_client(apps_gateway.url("acme"), _token(apps_gateway, issuer)) as client:
        [resource] = (await client.list_resources()).resources
        read = await client.read_resource(resource.uri)
    assert resource.mime_type == "text/html;profile=mcp-app"
    assert read.contents[0].text == NOTES_VIEW  # type: ignore[union-attr]


def test_a_changed_component_gets_a_new_uri_and_the_old_one_is_gone(
    apps_gateway: GatewayProcess, issuer: Issuer, worker_for: WorkerFor
) -> None:
    token = _token(apps_gateway, issuer)
    before = _tools(apps_gateway, token)["notes_get"]["_meta"]["ui"]["resourceUri"]
    changed = NOTES_VIEW.replace("Notes</main>", "Notes, version two</main>")
    try:
        apps_gateway.write_tenants(_tenants(apps_gateway, issuer, worker_for, changed))
        deadline = time.monotonic() + 10
        after = before
        while after == before and time.monotonic() < deadline:
            time.sleep(0.1)
            after = _tools(apps_gateway, token)["notes_get"]["_meta"]["ui"]["resourceUri"]
        assert after != before, "the gateway did not pick up the changed component"
        read = _call(apps_gateway, token, "resources/read", {"uri": after})["result"]
        assert "version two" in read["contents"][0]["text"]
        stale = _call(apps_gateway, token, "resources/read", {"uri": before})
        assert stale["error"]["code"] == -32002
    finally:
        _restore(apps_gateway, issuer, worker_for, before)


def test_a_tenants_file_with_a_bad_component_is_refused_naming_the_field(
    apps_gateway: GatewayProcess, issuer: Issuer, worker_for: WorkerFor
) -> None:
    token = _token(apps_gateway, issuer)
    uri = _tools(apps_gateway, token)["notes_get"]["_meta"]["ui"]["resourceUri"]
    tenants = _tenants(apps_gateway, issuer, worker_for, NOTES_VIEW)
    tenants[0]["components"][0]["html"] = NOTES_VIEW.replace(
        "<script>", '<script src="https://evil.example.net/x.js"></script><script>'
    )
    try:
        apps_gateway.write_tenants(tenants)
        deadline = time.monotonic() + 10
        while "tenants.acme.components[0].html: loads" not in apps_gateway.logs():
            assert time.monotonic() < deadline, apps_gateway.logs()[-2000:]
            time.sleep(0.1)
        assert "https://evil.example.net/x.js" in apps_gateway.logs()
        # The gateway keeps serving the last good settings: the bad view reaches nobody.
        read = _call(apps_gateway, token, "resources/read", {"uri": uri})["result"]
        assert read["contents"][0]["text"] == NOTES_VIEW
    finally:
        _restore(apps_gateway, issuer, worker_for, uri)
