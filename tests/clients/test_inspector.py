"""The MCP Inspector CLI (Node 22) against a real gateway and worker: tools and every error path.

The Inspector checks a tool result against the tool's ``outputSchema``; an
error that carried mismatched ``structuredContent`` used to be replaced by a
schema-validation message. Each error path here must reach it intact: the
result's JSON (stdout) holds the real error, and the Inspector reports only
that the tool returned ``isError`` (exit status 5).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from stowage_testing.gateway import GatewayProcess, Issuer
from stowage_testing.worker import WorkerProcess
from tests.clients.tools import NodeTools, Ran, pinned_versions

pytestmark = [pytest.mark.postgres]

#: The Inspector CLI's exit status when the tool answered with ``isError: true``.
TOOL_IS_ERROR = 5


def token(gateway: GatewayProcess, issuer: Issuer) -> str:
    return issuer.token(gateway.url("acme"), subject=f"inspector-{uuid.uuid4().hex[:10]}")


def call(tools: NodeTools, gateway: GatewayProcess, bearer: str, tool: str, *args: str) -> Ran:
    return tools.inspector(
        gateway.url("acme"), bearer, "--method", "tools/call", "--tool-name", tool,
        *(["--tool-arg", *args] if args else []),
    )  # fmt: skip


def tool_error_shown(ran: Ran) -> dict[str, Any]:
    """The error the Inspector printed, checked to be the real one and not a schema complaint."""
    assert ran.returncode == TOOL_IS_ERROR, ran
    [reported] = [json.loads(line) for line in ran.stderr.splitlines() if line.startswith("{")]
    assert reported["error"]["code"] == "tool_is_error", ran
    result = ran.json()
    assert result["isError"] is True, ran
    assert "structuredContent" not in result, ran
    details: dict[str, Any] = result["_meta"]["stowage.dev/error"]
    assert json.loads(result["content"][0]["text"]) == details, ran
    assert details["hint"], ran
    return details


def test_the_inspector_runs_on_the_pinned_node_22(node_tools: NodeTools) -> None:
    assert node_tools.node_version() == f"v{pinned_versions()['node']}"
    assert node_tools.node_version().startswith("v22.")
    version = node_tools.run("mcp-inspector", "--cli", "--version")
    assert version.stdout.strip() == pinned_versions()["@modelcontextprotocol/inspector"]


def test_the_inspector_lists_every_tool_and_its_strict_schema_check_finds_nothing(
    node_tools: NodeTools, gateway: GatewayProcess, issuer: Issuer
) -> None:
    listed = node_tools.inspector(
        gateway.url("acme"), token(gateway, issuer), "--method", "tools/list", "--strict"
    )
    assert listed.returncode == 0, listed
    names = {tool["name"] for tool in listed.json()["tools"]}
    assert {"items_save", "items_get", "items_list", "notes_save", "my_data_erase"} <= names
    problems = [
        line for line in listed.stderr.splitlines() if line.startswith(("Warning", "Error"))
    ]
    assert problems == [], listed.stderr


def test_the_inspector_shows_a_saved_object_with_its_version(
    node_tools: NodeTools, gateway: GatewayProcess, issuer: Issuer
) -> None:
    saved = call(
        node_tools, gateway, token(gateway, issuer), "items_save", "id=doc", 'data={"v":1}'
    )
    assert saved.returncode == 0, saved
    result = saved.json()
    assert result["isError"] is False
    assert result["structuredContent"]["object"]["version"] == 1


def test_not_found_reaches_the_inspector_intact(
    node_tools: NodeTools, gateway: GatewayProcess, issuer: Issuer
) -> None:
    details = tool_error_shown(
        call(node_tools, gateway, token(gateway, issuer), "items_get", "id=nope")
    )
    assert details["error"]["code"] == "not_found"
    assert "nope" in details["error"]["message"]


def test_a_conflict_reaches_the_inspector_with_the_current_object(
    node_tools: NodeTools, gateway: GatewayProcess, issuer: Issuer
) -> None:
    bearer = token(gateway, issuer)
    first = call(node_tools, gateway, bearer, "items_save", "id=doc", 'data={"v":1}')
    assert first.returncode == 0, first
    stale = call(
        node_tools, gateway, bearer, "items_save", "id=doc", 'data={"v":2}', "expected_version=7"
    )
    error = tool_error_shown(stale)["error"]
    assert error["code"] == "conflict"
    assert (error["current"]["version"], error["current"]["data"]) == (1, {"v": 1})


@pytest.mark.parametrize(
    ("tool", "args", "field"),
    [
        ("notes_save", ['data={"title":42}'], "data.title"),
        ("notes_save", ['data={"body":"no title"}'], "data.title"),
        ("notes_save", ['data={"title":"t","tags":["a",2]}'], "data.tags[1]"),
        ("items_get", ["id=a", "colour=red"], "colour"),
    ],
    ids=["wrong-type", "missing-required", "array-item", "unexpected"],
)
def test_an_invalid_argument_reaches_the_inspector_naming_the_field(
    node_tools: NodeTools,
    gateway: GatewayProcess,
    issuer: Issuer,
    tool: str,
    args: list[str],
    field: str,
) -> None:
    error = tool_error_shown(call(node_tools, gateway, token(gateway, issuer), tool, *args))[
        "error"
    ]
    assert (error["code"], error["field"]) == ("invalid_argument", field)


def test_quota_exceeded_reaches_the_inspector_intact(
    node_tools: NodeTools, gateway: GatewayProcess, issuer: Issuer
) -> None:
    big = json.dumps({"blob": "x" * (17 * 1024)})  # the tier's limit is 16Ki per object
    details = tool_error_shown(
        call(node_tools, gateway, token(gateway, issuer), "items_save", f"data={big}")
    )
    assert details["error"]["code"] == "quota_exceeded"
    assert "16384" in details["error"]["message"]


def test_storage_unavailable_reaches_the_inspector_as_retriable(
    node_tools: NodeTools, gateway: GatewayProcess, issuer: Issuer, worker: WorkerProcess
) -> None:
    bearer = token(gateway, issuer)
    worker.stop()
    try:
        ran = call(node_tools, gateway, bearer, "items_get", "id=a")
    finally:
        worker.start()
    error = tool_error_shown(ran)["error"]
    assert (error["code"], error["retriable"]) == ("unavailable", True)
    back = call(node_tools, gateway, bearer, "items_save", 'data={"after":"restart"}')
    assert back.returncode == 0, back


def test_the_inspector_sees_the_tool_level_challenge_when_it_sends_apps_sdk_metadata(
    node_tools: NodeTools, gateway: GatewayProcess, issuer: Issuer
) -> None:
    reader = issuer.token(gateway.url("acme"), subject="inspector-reader", scopes=("stowage:read",))
    ran = node_tools.inspector(
        gateway.url("acme"), reader, "--method", "tools/call", "--tool-name", "items_save",
        "--tool-arg", 'data={"v":1}', "--tool-metadata", "openai/userAgent=mcp-inspector",
    )  # fmt: skip
    details = tool_error_shown(ran)
    assert (details["error"]["code"], details["error"]["scope"]) == (
        "insufficient_scope",
        "stowage:write",
    )
    [challenge] = ran.json()["_meta"]["mcp/www_authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge and 'scope="stowage:write"' in challenge


def test_the_inspector_lists_and_reads_the_tenants_component(
    node_tools: NodeTools, gateway: GatewayProcess, issuer: Issuer
) -> None:
    bearer = token(gateway, issuer)
    listed = node_tools.inspector(gateway.url("acme"), bearer, "--method", "resources/list")
    assert listed.returncode == 0, listed
    [resource] = listed.json()["resources"]
    assert resource["mimeType"] == "text/html;profile=mcp-app"
    assert resource["uri"].startswith("ui://components/notes/")
    read = node_tools.inspector(
        gateway.url("acme"), bearer, "--method", "resources/read", "--uri", resource["uri"]
    )
    assert read.returncode == 0, read
    [content] = read.json()["contents"]
    assert content["uri"] == resource["uri"]
    assert content["text"].startswith("<!doctype html>")
    unknown = node_tools.inspector(
        gateway.url("acme"), bearer, "--method", "resources/read", "--uri", "ui://components/x/0"
    )
    assert unknown.returncode != 0, unknown
    assert "Resource not found" in unknown.stdout + unknown.stderr, unknown
