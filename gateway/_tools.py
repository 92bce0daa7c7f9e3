"""The tools a tenant's connector offers, built from its settings. No I/O here.

Every tenant gets the built-in tools (items, preferences, export and erasure of
the caller's data). Each collection it declares with a JSON Schema also gets
typed tools whose input and output schemas embed that schema, so the model
fills real fields instead of a free-form JSON blob.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import mcp_types as types
from jsonschema import Draft202012Validator

from gateway._types import READ_SCOPE, WRITE_SCOPE, Tenant

log = logging.getLogger(__name__)

Action = Literal[
    "save",
    "get",
    "list",
    "delete",
    "prefs_get",
    "prefs_update",
    "usage",
    "export",
    "erase",
    "revoke_access",
]

BUILTIN_COLLECTION = "items"
_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}
_ID = {"type": "string", "minLength": 1, "maxLength": 200}
_VERSION = {
    "type": "integer",
    "minimum": 0,
    "description": "Version the object must currently have (from an earlier result); "
    "0 means it must not exist yet. Omit to write unconditionally.",
}
_IDEMPOTENCY = {
    "type": "string",
    "maxLength": 200,
    "description": "A key unique to this intended change; repeating a call with the same "
    "key returns the first result and writes nothing again.",
}
_TIMESTAMP = {"type": "string", "format": "date-time"}


def _nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` or null, as ``anyOf`` branches with one ``type`` each.

    A ``type`` array (``["string", "null"]``) is valid JSON Schema but less
    portable: clients that map tool schemas onto a single-``type`` dialect (the
    MCP Inspector's ``--strict`` check warns about them) may drop the constraint.
    """
    return {"anyOf": [dict(schema), {"type": "null"}]}


def _nouns(collection: str) -> tuple[str, str]:
    """("a note", "notes") for ``notes``: how titles name one object and the collection.

    Collection names are usually plural nouns; a name that is not (``cache``)
    serves as both.
    """
    words = collection.replace("_", " ")
    if words.endswith("ies"):
        one = words[:-3] + "y"
    elif words.endswith(("sses", "xes", "zes", "ches", "shes")):
        one = words[:-2]
    elif words.endswith("s") and not words.endswith("ss"):
        one = words[:-1]
    else:
        one = words
    article = "an" if one[:1] in ("a", "e", "i", "o", "u") else "a"
    return f"{article} {one}", words


def _object_schema(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "collection": {"type": "string"},
            "id": {"type": "string"},
            "version": {"type": "integer"},
            "schema_version": {"type": "integer"},
            "data": dict(data),
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
            "expires_at": _nullable(_TIMESTAMP),
        },
        "required": ["collection", "id", "version", "schema_version", "data"],
    }


def _embeddable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A collection schema fit to embed as a property (no document-level keys)."""
    out = copy.deepcopy(dict(schema))
    for key in ("$schema", "$id"):
        out.pop(key, None)
    return out


_PREFERENCES_OUT = {
    "type": "object",
    "properties": {
        "preferences": {"type": "object"},
        "version": {"type": "integer"},
        "updated_at": _nullable(_TIMESTAMP),
    },
    "required": ["preferences", "version"],
}


_COUNT = {"type": "integer", "minimum": 0}
_LIMIT = {
    "type": "integer",
    "minimum": 0,
    "description": "The limit for this user; absent when the tenant sets none.",
}
_USAGE_OUT = {
    "type": "object",
    "properties": {
        "objects": _COUNT,
        "bytes": _COUNT,
        "collections": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "collection": {"type": "string"},
                    "objects": _COUNT,
                    "bytes": _COUNT,
                },
                "required": ["collection", "objects", "bytes"],
            },
        },
        "limits": {
            "type": "object",
            "properties": {
                "max_objects": _LIMIT,
                "max_bytes": _LIMIT,
                "max_object_bytes": {**_COUNT, "description": "The largest single object."},
            },
            "required": ["max_object_bytes"],
        },
    },
    "required": ["objects", "bytes", "collections", "limits"],
}


@dataclass(frozen=True)
class ToolSpec:
    """One tool: what it does at the worker, the scope it needs, its wire form."""

    name: str
    action: Action
    scope: str
    #: Fixed collection (typed tools); None: the ``collection`` argument, default items.
    collection: str | None
    definition: types.Tool
    validator: Draft202012Validator


def _tool(
    name: str,
    title: str,
    description: str,
    action: Action,
    input_schema: dict[str, Any],
    output_schema: dict[str, Any],
    *,
    collection: str | None = None,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
) -> ToolSpec:
    scope = READ_SCOPE if read_only else WRITE_SCOPE
    input_schema = {"additionalProperties": False, **input_schema, "type": "object"}
    definition = types.Tool(
        name=name,
        title=title,
        description=description,
        input_schema=input_schema,
        output_schema=output_schema,
        annotations=types.ToolAnnotations(
            title=title,
            read_only_hint=read_only,
            destructive_hint=destructive,
            idempotent_hint=idempotent,
            open_world_hint=False,
        ),
        _meta={"securitySchemes": [{"type": "oauth2", "scopes": [scope]}]},
    )
    return ToolSpec(name, action, scope, collection, definition, Draft202012Validator(input_schema))


def _object_tools(prefix: str, data: Mapping[str, Any], collection: str | None) -> list[ToolSpec]:
    pick = {} if collection else {"collection": {**_NAME, "default": BUILTIN_COLLECTION}}
    obj = _object_schema(data)
    one, many = _nouns(prefix)
    where = f"the {many} collection" if collection else "a schemaless collection (default: items)"
    return [
        _tool(
            f"{prefix}_save",
            f"Save {one}",
            f"Create or replace one object in {where} for the signed-in user. Use when the user "
            "asks to remember, store, or update something. Pass expected_version from an earlier "
            "result to avoid overwriting a newer change; on a conflict the result holds the "
            "current object. Returns its id and new version.",
            "save",
            {
                "properties": {
                    **pick,
                    "id": {**_ID, "description": "Omit to create a new object with a fresh id."},
                    "data": dict(data),
                    "expected_version": _VERSION,
                    "idempotency_key": _IDEMPOTENCY,
                    "ttl_seconds": {"type": "integer", "minimum": 0, "default": 0},
                },
                "required": ["data"],
            },
            {
                "type": "object",
                "properties": {
                    "object": obj,
                    "created": {"type": "boolean"},
                    "replayed": {"type": "boolean"},
                },
                "required": ["object", "created", "replayed"],
            },
            collection=collection,
        ),
        _tool(
            f"{prefix}_get",
            f"Get {one}",
            f"Read one object of the signed-in user from {where} by id. Use when you know the "
            "id (from an earlier result or a widget's state) and need its current content.",
            "get",
            {"properties": {**pick, "id": _ID}, "required": ["id"]},
            {"type": "object", "properties": {"object": obj}, "required": ["object"]},
            collection=collection,
            read_only=True,
            idempotent=True,
        ),
        _tool(
            f"{prefix}_list",
            f"List {many}",
            f"List the signed-in user's objects in {where}, oldest first, one page at a time. "
            "Use to find what the user has stored; pass next_cursor to get the next page.",
            "list",
            {
                "properties": {
                    **pick,
                    "page_size": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                    "cursor": {"type": "string"},
                },
            },
            {
                "type": "object",
                "properties": {
                    "objects": {"type": "array", "items": obj},
                    "next_cursor": _nullable({"type": "string"}),
                },
                "required": ["objects", "next_cursor"],
            },
            collection=collection,
            read_only=True,
            idempotent=True,
        ),
        _tool(
            f"{prefix}_delete",
            f"Delete {one}",
            f"Delete one object of the signed-in user from {where}. Use only when the user asks "
            "to remove it. Pass expected_version to delete only the version you showed them.",
            "delete",
            {
                "properties": {
                    **pick,
                    "id": _ID,
                    "expected_version": _VERSION,
                    "idempotency_key": _IDEMPOTENCY,
                },
                "required": ["id"],
            },
            {
                "type": "object",
                "properties": {
                    "collection": {"type": "string"},
                    "id": {"type": "string"},
                    "version": {"type": "integer"},
                    "replayed": {"type": "boolean"},
                },
                "required": ["collection", "id", "version", "replayed"],
            },
            collection=collection,
            destructive=True,
            idempotent=True,
        ),
    ]


def _builtin_tools() -> list[ToolSpec]:
    tools = _object_tools(BUILTIN_COLLECTION, {"type": "object"}, None)
    tools += [
        _tool(
            "preferences_get",
            "Get preferences",
            "Read the signed-in user's preferences (one JSON object). Call before answering in a "
            "way the user may have customised, e.g. tone, units or defaults.",
            "prefs_get",
            {"properties": {}},
            _PREFERENCES_OUT,
            read_only=True,
            idempotent=True,
        ),
        _tool(
            "preferences_update",
            "Update preferences",
            "Change the signed-in user's preferences with a JSON merge patch: keys set to a value "
            "are stored, keys set to null are removed, others are kept. Use when the user states "
            "a lasting preference.",
            "prefs_update",
            {
                "properties": {
                    "patch": {"type": "object", "description": "RFC 7396 JSON merge patch."},
                    "expected_version": _VERSION,
                    "idempotency_key": _IDEMPOTENCY,
                },
                "required": ["patch"],
            },
            _PREFERENCES_OUT,
            idempotent=True,
        ),
        _tool(
            "my_usage_get",
            "Show my storage use",
            "Show how much the signed-in user stores (objects and bytes, per collection) and the "
            "limits that apply to them. Call when a save was refused with quota_exceeded, to tell "
            "the user why and which collections to clean up, or when the user asks how much "
            "space they use.",
            "usage",
            {"properties": {}},
            _USAGE_OUT,
            read_only=True,
            idempotent=True,
        ),
        _tool(
            "my_data_export",
            "Export my data",
            "Export everything stored about the signed-in user: identities, preferences and all "
            "objects. Use only when the user asks for a copy of their data.",
            "export",
            {"properties": {}},
            {
                "type": "object",
                "properties": {
                    "user_id": {"type": "string"},
                    "identities": {"type": "array", "items": {"type": "object"}},
                    "preferences": _nullable({"type": "object"}),
                    "objects": {"type": "array", "items": _object_schema({"type": "object"})},
                },
                "required": ["user_id", "identities", "objects"],
            },
            read_only=True,
            idempotent=True,
        ),
        _tool(
            "my_data_erase",
            "Erase my data",
            "Permanently delete everything stored about the signed-in user. Use only when the "
            "user explicitly asks to erase all their data, after confirming with them; set "
            "confirm to true. This cannot be undone.",
            "erase",
            {
                "properties": {"confirm": {"type": "boolean", "const": True}},
                "required": ["confirm"],
            },
            {
                "type": "object",
                "properties": {
                    "objects_deleted": {"type": "integer"},
                    "preferences_deleted": {"type": "boolean"},
                    "identities_deleted": {"type": "integer"},
                },
                "required": ["objects_deleted", "preferences_deleted", "identities_deleted"],
            },
            destructive=True,
            idempotent=True,
        ),
        _tool(
            "my_access_revoke",
            "Revoke my access",
            "Disconnect the signed-in user from this app everywhere: every sign-in they gave it "
            "so far stops working within seconds, this conversation's included, and the app "
            "must be connected again before it can be used. Their stored data is kept (erasing "
            "it is my_data_erase). Use only when the user asks to disconnect, sign out "
            "everywhere or revoke this app's access (e.g. after losing a device), after "
            "confirming with them; set confirm to true.",
            "revoke_access",
            {
                "properties": {"confirm": {"type": "boolean", "const": True}},
                "required": ["confirm"],
            },
            {
                "type": "object",
                "properties": {
                    "revoked_before": {
                        **_TIMESTAMP,
                        "description": "Tokens issued at or before this time are refused.",
                    },
                    "message": {"type": "string"},
                },
                "required": ["revoked_before", "message"],
            },
            destructive=True,
            idempotent=True,
        ),
    ]
    return tools


@dataclass(frozen=True)
class Catalogue:
    """The tools of one tenant, by name, and the ``tools/list`` result."""

    tools: Mapping[str, ToolSpec]
    listing: types.ListToolsResult

    def scope_for(self, name: str) -> str | None:
        spec = self.tools.get(name)
        return spec.scope if spec else None


def build_catalogue(tenant: Tenant) -> Catalogue:
    specs = _builtin_tools()
    for collection in tenant.collections:
        if collection.schema is None or collection.name == BUILTIN_COLLECTION:
            continue
        specs += _object_tools(collection.name, _embeddable(collection.schema), collection.name)
    tools: dict[str, ToolSpec] = {}
    for spec in specs:
        if spec.name in tools:
            log.warning(
                "tool name taken; skipping the typed tool",
                extra={"tenant": tenant.name, "tool": spec.name},
            )
            continue
        tools[spec.name] = spec
    listing = types.ListToolsResult(tools=[s.definition for s in tools.values()])
    return Catalogue(tools, listing)


class Catalogues:
    """Catalogues per tenant, rebuilt when the tenant's settings object changes."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[Tenant, Catalogue]] = {}

    def of(self, tenant: Tenant) -> Catalogue:
        found = self._built.get(tenant.name)
        if found is not None and found[0] is tenant:
            return found[1]
        catalogue = build_catalogue(tenant)
        self._built[tenant.name] = (tenant, catalogue)
        return catalogue
