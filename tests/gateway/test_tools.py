"""Every tool over real HTTP with the mcp SDK client, against a real worker on PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from stowage_testing.gateway import GatewayProcess, Issuer, mcp_client, post, rpc, tool_error

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


async def test_an_invalid_argument_names_the_field_in_dotted_form_even_when_missing_or_unexpected(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    async with mcp_client(gateway.url("acme"), token_for(gateway, issuer, fresh_user())) as client:
        missing_top = await client.call_tool("items_get", {})
        unexpected_top = await client.call_tool("items_get", {"id": "a", "colour": "red"})
        missing_nested = await client.call_tool("notes_save", {"data": {"body": "no title"}})
        unexpected_nested = await client.call_tool(
            "notes_save", {"data": {"title": "t", "colour": "red"}}
        )
        wrong_item = await client.call_tool(
            "notes_save", {"data": {"title": "t", "tags": ["a", 2]}}
        )
    fields = {
        name: tool_error(result)["error"]
        for name, result in {
            "missing_top": missing_top,
            "unexpected_top": unexpected_top,
            "missing_nested": missing_nested,
            "unexpected_nested": unexpected_nested,
            "wrong_item": wrong_item,
        }.items()
    }
    assert {name: error["field"] for name, error in fields.items()} == {
        "missing_top": "id",
        "unexpected_top": "colour",
        "missing_nested": "data.title",
        "unexpected_nested": "data.colour",
        "wrong_item": "data.tags[1]",
    }
    assert all(error["code"] == "invalid_argument" for error in fields.values())


async def test_tool_titles_read_as_actions_on_the_collection(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    async with mcp_client(gateway.url("acme"), token_for(gateway, issuer, fresh_user())) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    titles = {name: tools[name].title for name in tools if name.startswith(("items_", "notes_"))}
    assert titles == {
        "items_save": "Save an item",
        "items_get": "Get an item",
        "items_list": "List items",
        "items_delete": "Delete an item",
        "notes_save": "Save a note",
        "notes_get": "Get a note",
        "notes_list": "List notes",
        "notes_delete": "Delete a note",
    }
    assert all(tools[name].annotations.title == title for name, title in titles.items())


def _type_arrays_and_untyped(schema: Any, path: str = "") -> list[str]:
    """Paths of portability problems: a ``type`` array, or a property schema with no keyword."""
    found: list[str] = []
    if isinstance(schema, dict):
        if isinstance(schema.get("type"), list):
            found.append(path)
        for name, sub in (schema.get("properties") or {}).items():
            if isinstance(sub, dict) and not sub:
                found.append(f"{path}.properties.{name}")
        for key, sub in schema.items():
            found += _type_arrays_and_untyped(sub, f"{path}.{key}")
    elif isinstance(schema, list):
        for i, sub in enumerate(schema):
            found += _type_arrays_and_untyped(sub, f"{path}[{i}]")
    return found


async def test_tool_schemas_spell_nullable_values_with_any_of_and_type_every_value(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    async with mcp_client(gateway.url("acme"), token_for(gateway, issuer, fresh_user())) as client:
        tools = (await client.list_tools()).tools
        listed = await client.call_tool("items_list", {})
    problems = {
        t.name: _type_arrays_and_untyped(t.input_schema) + _type_arrays_and_untyped(t.output_schema)
        for t in tools
    }
    assert {name: found for name, found in problems.items() if found} == {}
    # A null still validates where the schema allows one (the SDK client checks the output).
    assert not listed.is_error and listed.structured_content["next_cursor"] is None
