"""Every tool over real HTTP with the mcp SDK client, against a real worker on PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.gateway.harness import GatewayProcess, Issuer, mcp_client, post, rpc, tool_error

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]


def fresh_user() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


def token_for(gateway: GatewayProcess, issuer: Issuer, user: str, tenant: str = "acme") -> str:
    return issuer.token(gateway.url(tenant), subject=user)


async def call(gateway: GatewayProcess, token: str, tool: str, args: dict[str, Any]) -> Any:
    async with mcp_client(gateway.url("acme"), token) as client:
        return await client.call_tool(tool, args)


async def test_tools_list_offers_builtin_and_typed_tools_with_schemas_annotations_and_security(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    async with mcp_client(gateway.url("acme"), token_for(gateway, issuer, fresh_user())) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {
        "items_save", "items_get", "items_list", "items_delete",
        "preferences_get", "preferences_update", "my_usage_get", "my_data_export",
        "my_data_erase",
        "notes_save", "notes_get", "notes_list", "notes_delete",
    } <= set(tools)  # fmt: skip
    for tool in tools.values():
        assert tool.description and tool.input_schema and tool.output_schema
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is not None
        assert tool.annotations.destructive_hint is not None
        assert tool.annotations.idempotent_hint is not None
        assert tool.meta and tool.meta["securitySchemes"][0]["type"] == "oauth2"
    notes_save = tools["notes_save"]
    assert notes_save.input_schema["properties"]["data"]["required"] == ["title"]
    data_out = notes_save.output_schema["properties"]["object"]["properties"]["data"]
    assert data_out["properties"]["title"] == {"type": "string", "maxLength": 200}
    assert tools["items_get"].annotations.read_only_hint is True
    assert tools["my_data_erase"].annotations.destructive_hint is True
    assert tools["items_save"].meta["securitySchemes"][0]["scopes"] == ["stowage:write"]


async def test_save_get_list_delete_round_trip_carries_ids_and_versions(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    async with mcp_client(gateway.url("acme"), token_for(gateway, issuer, fresh_user())) as client:
        saved = await client.call_tool("items_save", {"id": "todo", "data": {"task": "milk"}})
        assert not saved.is_error
        assert saved.structured_content["object"]["version"] == 1
        assert saved.structured_content["created"] is True
        replaced = await client.call_tool(
            "items_save", {"id": "todo", "data": {"task": "oat milk"}, "expected_version": 1}
        )
        assert replaced.structured_content["object"]["version"] == 2
        got = await client.call_tool("items_get", {"id": "todo"})
        assert got.structured_content["object"]["data"] == {"task": "oat milk"}
        listed = await client.call_tool("items_list", {})
        assert [o["id"] for o in listed.structured_content["objects"]] == ["todo"]
        deleted = await client.call_tool("items_delete", {"id": "todo", "expected_version": 2})
        assert (deleted.structured_content["id"], deleted.structured_content["version"]) == (
            "todo",
            2,
        )
        gone = await client.call_tool("items_get", {"id": "todo"})
    assert tool_error(gone)["error"]["code"] == "not_found"


async def test_stale_expected_version_returns_a_conflict_with_the_current_object(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    async with mcp_client(gateway.url("acme"), token_for(gateway, issuer, fresh_user())) as client:
        await client.call_tool("items_save", {"id": "doc", "data": {"v": 1}})
        await client.call_tool("items_save", {"id": "doc", "data": {"v": 2}})
        stale = await client.call_tool(
            "items_save", {"id": "doc", "data": {"v": 3}, "expected_version": 1}
        )
        current = await client.call_tool("items_get", {"id": "doc"})
    details = tool_error(stale)
    error = details["error"]
    assert error["code"] == "conflict"
    assert (error["current"]["version"], error["current"]["data"]) == (2, {"v": 2})
    assert "expected_version" in details["hint"]
    assert current.structured_content["object"]["data"] == {"v": 2}


async def test_a_replayed_idempotency_key_returns_the_first_result_and_writes_once(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    args = {"data": {"n": 1}, "idempotency_key": "key-1"}
    async with mcp_client(gateway.url("acme"), token_for(gateway, issuer, fresh_user())) as client:
        first = await client.call_tool("items_save", args)
        again = await client.call_tool("items_save", args)
        listed = await client.call_tool("items_list", {})
    assert again.structured_content["replayed"] is True
    assert again.structured_content["object"]["id"] == first.structured_content["object"]["id"]
    assert len(listed.structured_content["objects"]) == 1


async def test_typed_collection_tool_rejects_data_that_breaks_the_schema_naming_the_field(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    async with mcp_client(gateway.url("acme"), token_for(gateway, issuer, fresh_user())) as client:
        ok = await client.call_tool("notes_save", {"data": {"title": "Groceries", "tags": ["a"]}})
        bad = await client.call_tool("notes_save", {"data": {"title": 42}})
        missing = await client.call_tool("notes_save", {"data": {"body": "no title"}})
        listed = await client.call_tool("notes_list", {})
    assert not ok.is_error and ok.structured_content["object"]["collection"] == "notes"
    for result in (bad, missing):
        error = tool_error(result)["error"]
        assert error["code"] == "invalid_argument"
        assert error["field"].startswith("data")
    assert len(listed.structured_content["objects"]) == 1


async def test_preferences_take_merge_patches_and_read_back(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    async with mcp_client(gateway.url("acme"), token_for(gateway, issuer, fresh_user())) as client:
        empty = await client.call_tool("preferences_get", {})
        await client.call_tool("preferences_update", {"patch": {"units": "metric", "tone": "dry"}})
        updated = await client.call_tool("preferences_update", {"patch": {"tone": None}})
        read = await client.call_tool("preferences_get", {})
    assert empty.structured_content["version"] == 0
    assert updated.structured_content["preferences"] == {"units": "metric"}
    assert read.structured_content == updated.structured_content


async def test_export_returns_everything_and_erase_removes_it(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    user = fresh_user()
    async with mcp_client(gateway.url("acme"), token_for(gateway, issuer, user)) as client:
        await client.call_tool("items_save", {"id": "a", "data": {"x": 1}})
        await client.call_tool("notes_save", {"id": "n", "data": {"title": "t"}})
        await client.call_tool("preferences_update", {"patch": {"lang": "en"}})
        exported = await client.call_tool("my_data_export", {})
        refused = await client.call_tool("my_data_erase", {"confirm": False})
        erased = await client.call_tool("my_data_erase", {"confirm": True})
        after = await client.call_tool("items_list", {})
    data = exported.structured_content
    assert {o["id"] for o in data["objects"]} == {"a", "n"}
    assert data["preferences"]["preferences"] == {"lang": "en"}
    assert data["identities"][0]["subject"] == user
    assert tool_error(refused)["error"]["field"] == "confirm"
    assert erased.structured_content["objects_deleted"] == 2
    assert after.structured_content["objects"] == []


async def test_my_usage_get_shows_what_the_user_stores_by_collection_and_the_limits(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    async with mcp_client(gateway.url("acme"), token_for(gateway, issuer, fresh_user())) as client:
        empty = await client.call_tool("my_usage_get", {})
        await client.call_tool("items_save", {"id": "a", "data": {"x": 1}})
        await client.call_tool("items_save", {"id": "b", "data": {"x": 2}})
        await client.call_tool("notes_save", {"id": "n", "data": {"title": "t"}})
        usage = await client.call_tool("my_usage_get", {})
    assert not usage.is_error
    assert empty.structured_content["objects"] == 0
    report = usage.structured_content
    assert report["objects"] == 3 and report["bytes"] > 0
    assert [(c["collection"], c["objects"]) for c in report["collections"]] == [
        ("items", 2),
        ("notes", 1),
    ]
    assert report["limits"] == {"max_object_bytes": 16 * 1024}


async def test_tools_act_only_on_the_callers_own_objects(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    await call(gateway, token_for(gateway, issuer, "owner-1"), "items_save",
               {"id": "private", "data": {"secret": True}})  # fmt: skip
    other = await call(gateway, token_for(gateway, issuer, fresh_user()), "items_get",
                       {"id": "private"})  # fmt: skip
    assert tool_error(other)["error"]["code"] == "not_found"


async def test_the_legacy_handshake_works_as_well_as_discovery(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    token = token_for(gateway, issuer, fresh_user())
    async with mcp_client(gateway.url("acme"), token, mode="legacy") as client:
        saved = await client.call_tool("items_save", {"data": {"via": "initialize"}})
    assert not saved.is_error


def test_the_correlation_id_of_the_request_is_returned_and_kept_on_the_object(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    token = token_for(gateway, issuer, fresh_user())
    body = rpc("tools/call", {"name": "items_save", "arguments": {"id": "c", "data": {}}})
    response = post(gateway.url("acme"), body, token, **{"x-request-id": "req-123"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-123"
    assert "req-123" in gateway.logs()
    fresh = post(gateway.url("acme"), rpc("tools/list"), token)
    assert len(fresh.headers["x-request-id"]) == 32
