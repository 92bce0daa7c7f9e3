"""The tool tables filled in per collection: plain JSON with nothing of the template left."""

from __future__ import annotations

import inspect
import json

import pytest

from gateway._types import AuthConfig, CollectionSpec, Tenant, TenantName
from gateway.surface import _operations
from gateway.surface._tool_table import (
    BUILTIN_TOOLS,
    FILE_TOOLS,
    OBJECT_TOOLS,
    SPACE_OBJECT_TOOLS,
    SPACE_TOOLS,
    ToolRow,
)
from gateway.surface._tools import build_catalogue
from stowage.tenant_spec import TenantSpec

NOTES = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}


def test_every_row_becomes_one_tool_per_collection_with_no_slot_or_placeholder_left() -> None:
    spec = TenantSpec(
        auth=AuthConfig("https://issuer.example", "https://acme.example/mcp"),
        collections=(CollectionSpec("notes", schema=NOTES), CollectionSpec("cache")),
    )
    tenant = Tenant(TenantName("acme"), "127.0.0.1:1", spec)
    catalogue = build_catalogue(tenant)
    expected = {f"{prefix}_{row.name}" for prefix in ("items", "notes") for row in OBJECT_TOOLS}
    assert set(catalogue.tools) == expected | {row.name for row in BUILTIN_TOOLS}
    for tool in catalogue.listing.tools:
        wire = json.dumps(tool.model_dump(by_alias=True, exclude_none=True))  # a Slot would raise
        assert "{one}" not in wire and "{many}" not in wire and "{where}" not in wire
    notes_save = catalogue.tools["notes_save"].definition
    assert notes_save.input_schema["properties"]["data"] == NOTES
    assert "collection" not in notes_save.input_schema["properties"]
    items_save = catalogue.tools["items_save"].definition
    assert next(iter(items_save.input_schema["properties"])) == "collection"  # named first


def test_every_row_names_an_operation_and_every_operation_serves_a_row() -> None:
    """A tool is one declaration: a row cannot be built without an operation, and none is dead."""
    rows = (*OBJECT_TOOLS, *BUILTIN_TOOLS, *SPACE_OBJECT_TOOLS, *SPACE_TOOLS, *FILE_TOOLS)
    named = {row.operation for row in rows}
    assert all(inspect.iscoroutinefunction(operation) for operation in named)
    defined = {
        value
        for name, value in vars(_operations).items()
        if inspect.iscoroutinefunction(value) and value.__module__ == _operations.__name__
    }
    assert defined == named
    with pytest.raises(TypeError, match="operation"):
        ToolRow("orphan", "Orphan", "A tool with no operation.", input_schema={}, output_schema={})  # type: ignore[call-arg]


def test_a_shared_collection_gets_tools_that_take_a_space_and_the_tenant_gets_space_tools() -> None:
    spec = TenantSpec(
        auth=AuthConfig("https://issuer.example", "https://acme.example/mcp"),
        collections=(CollectionSpec("lists", schema=NOTES, shared=True),),
    )
    catalogue = build_catalogue(Tenant(TenantName("acme"), "127.0.0.1:1", spec))
    shared = {f"lists_{row.name}" for row in SPACE_OBJECT_TOOLS}
    assert set(catalogue.tools) >= shared | {row.name for row in SPACE_TOOLS}
    for name in shared:
        schema = catalogue.tools[name].definition.input_schema
        assert "space" in schema["required"]
    assert catalogue.tools["lists_save"].definition.input_schema["properties"]["data"] == NOTES
    plain = build_catalogue(Tenant(TenantName("b"), "127.0.0.1:1", TenantSpec(auth=spec.auth)))
    assert not {row.name for row in SPACE_TOOLS} & set(plain.tools)


def test_a_tenant_with_files_gets_the_files_tools_and_one_without_does_not() -> None:
    from stowage.tenant_spec import Files

    auth = AuthConfig("https://issuer.example", "https://acme.example/mcp")
    names = {row.name for row in FILE_TOOLS}
    with_files = build_catalogue(
        Tenant(TenantName("acme"), "127.0.0.1:1", TenantSpec(auth=auth, files=Files()))
    )
    assert names <= set(with_files.tools)
    assert with_files.tools["files_get"].scope == "stowage:read"
    assert with_files.tools["files_create_upload"].scope == "stowage:write"
    plain = build_catalogue(Tenant(TenantName("b"), "127.0.0.1:1", TenantSpec(auth=auth)))
    assert not names & set(plain.tools)


def test_every_tool_a_component_may_open_is_an_object_tool() -> None:
    """The spec parser's linkable names (stowage.apps) are tools the gateway builds."""
    from stowage.apps import LINKABLE_VERBS
    from stowage.tenant_spec import linkable_tools, parse_tenant_spec

    spec = parse_tenant_spec(
        {
            "auth": {"issuer": "https://issuer.example", "audience": "https://acme.example/mcp"},
            "collections": [{"name": "notes", "schema": {"type": "object"}}],
        }
    )
    tenant = Tenant(TenantName("acme"), "127.0.0.1:1", spec)
    built = set(build_catalogue(tenant).tools)
    assert set(LINKABLE_VERBS) <= {row.name for row in OBJECT_TOOLS}
    assert linkable_tools(spec.collections) <= built
