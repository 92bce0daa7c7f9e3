"""The tool tables filled in per collection: plain JSON with nothing of the template left."""

from __future__ import annotations

import json

from gateway._tool_table import BUILTIN_TOOLS, OBJECT_TOOLS
from gateway._tools import build_catalogue
from gateway._types import AuthConfig, CollectionSpec, Tenant, TenantName

NOTES = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}


def test_every_row_becomes_one_tool_per_collection_with_no_slot_or_placeholder_left() -> None:
    tenant = Tenant(
        TenantName("acme"),
        "127.0.0.1:1",
        AuthConfig("https://issuer.example", "https://acme.example/mcp"),
        collections=(CollectionSpec("notes", schema=NOTES), CollectionSpec("cache")),
    )
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
