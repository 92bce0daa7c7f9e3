"""The tools' wire definitions as data: one row per tool. No I/O here.

A row is the whole declaration of a tool in the gateway: its name, wording,
schemas, hints and the operation (:mod:`gateway.surface._operations`) that carries it
out, so a tool without an operation cannot be declared.

:data:`OBJECT_TOOLS` are the four tools every collection gets (the built-in
``items`` and each collection declared with a JSON Schema); their rows are
templates that :mod:`gateway.surface._tools` fills in per collection. :data:`BUILTIN_TOOLS`
are the tools every tenant gets once (preferences, usage, export, erasure,
revocation), complete as they stand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gateway.surface import _operations as op
from gateway.surface._operations import Operation
from stowage.values import MAX_TTL_SECONDS, MAX_VERSION

NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}
_ID = {"type": "string", "minLength": 1, "maxLength": 200}
_VERSION = {
    "type": "integer",
    "minimum": 0,
    "maximum": MAX_VERSION,
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
_CONFIRM = {
    "properties": {"confirm": {"type": "boolean", "const": True}},
    "required": ["confirm"],
}


def nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` or null, as ``anyOf`` branches with one ``type`` each.

    A ``type`` array (``["string", "null"]``) is valid JSON Schema but less
    portable: clients that map tool schemas onto a single-``type`` dialect (the
    MCP Inspector's ``--strict`` check warns about them) may drop the constraint.
    """
    return {"anyOf": [dict(schema), {"type": "null"}]}


def object_schema(data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored object whose ``data`` follows ``data``, as tool results carry it."""
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
            "expires_at": nullable(_TIMESTAMP),
        },
        "required": ["collection", "id", "version", "schema_version", "data"],
    }


#: An object stored before a limit applied whose data can no longer travel as JSON
#: (see :mod:`stowage.values`): its stored text instead, and why.
UNREADABLE_OBJECT = {
    "type": "object",
    "properties": {
        "collection": {"type": "string"},
        "id": {"type": "string"},
        "version": {"type": "integer"},
        "problem": {"type": "string"},
        "data_json": {
            "type": "string",
            "description": "The object's data exactly as stored, as JSON text.",
        },
    },
    "required": ["collection", "id", "version", "problem", "data_json"],
}


class Slot(Enum):
    """A place in an object tool's schema that holds a part of its collection."""

    #: The collection's JSON Schema (``{"type": "object"}`` when it has none).
    DATA = "data"
    #: A stored object of the collection (:func:`object_schema` of its data).
    OBJECT = "object"


@dataclass(frozen=True)
class ToolRow:
    """One tool: its name, wording, action and schemas, and the hints clients read.

    In :data:`OBJECT_TOOLS` the name follows the collection's prefix (``notes_``),
    the title and description may name ``{one}``, ``{many}`` and ``{where}``, the
    input's properties follow the ``collection`` argument where there is one, and
    :class:`Slot` markers stand for the collection's parts.
    """

    name: str
    title: str
    description: str
    #: What the tool does at the worker (:mod:`gateway.surface._operations`).
    operation: Operation
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    #: The caller's internal user id is gone once the tool succeeds (erasure): forget it.
    forgets_user: bool = False


OBJECT_TOOLS = (
    ToolRow(
        "save",
        "Save {one}",
        "Create or replace one object in {where} for the signed-in user. Use when the user "
        "asks to remember, store, or update something. Pass expected_version from an earlier "
        "result to avoid overwriting a newer change; on a conflict the result holds the "
        "current object. Returns its id and new version.",
        op.save,
        {
            "properties": {
                "id": {**_ID, "description": "Omit to create a new object with a fresh id."},
                "data": Slot.DATA,
                "expected_version": _VERSION,
                "idempotency_key": _IDEMPOTENCY,
                "ttl_seconds": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_TTL_SECONDS,
                    "default": 0,
                    "description": "Delete the object this many seconds from now (at most 100 "
                    "years); 0 keeps it as long as the collection's retention allows.",
                },
            },
            "required": ["data"],
        },
        {
            "type": "object",
            "properties": {
                "object": Slot.OBJECT,
                "created": {"type": "boolean"},
                "replayed": {"type": "boolean"},
            },
            "required": ["object", "created", "replayed"],
        },
    ),
    ToolRow(
        "get",
        "Get {one}",
        "Read one object of the signed-in user from {where} by id. Use when you know the "
        "id (from an earlier result or a widget's state) and need its current content.",
        op.get,
        {"properties": {"id": _ID}, "required": ["id"]},
        {"type": "object", "properties": {"object": Slot.OBJECT}, "required": ["object"]},
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "list",
        "List {many}",
        "List the signed-in user's objects in {where}, oldest first, one page at a time. "
        "Use to find what the user has stored; pass next_cursor to get the next page.",
        op.list_page,
        {
            "properties": {
                "page_size": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                "cursor": {"type": "string"},
            },
        },
        {
            "type": "object",
            "properties": {
                "objects": {"type": "array", "items": Slot.OBJECT},
                "next_cursor": nullable({"type": "string"}),
                "unreadable": {
                    "type": "array",
                    "items": UNREADABLE_OBJECT,
                    "description": "Objects on this page that cannot be returned as JSON "
                    "(my_data_export gives their stored text); absent when there are none.",
                },
            },
            "required": ["objects", "next_cursor"],
        },
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "delete",
        "Delete {one}",
        "Delete one object of the signed-in user from {where}. Use only when the user asks "
        "to remove it. Pass expected_version to delete only the version you showed them.",
        op.delete,
        {
            "properties": {
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
        destructive=True,
        idempotent=True,
    ),
)


_PREFERENCES_OUT = {
    "type": "object",
    "properties": {
        "preferences": {"type": "object"},
        "version": {"type": "integer"},
        "updated_at": nullable(_TIMESTAMP),
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
_EXPORT_OUT = {
    "type": "object",
    "properties": {
        "user_id": {"type": "string"},
        "identities": {"type": "array", "items": {"type": "object"}},
        "preferences": nullable({"type": "object"}),
        "objects": {"type": "array", "items": object_schema({"type": "object"})},
        "unreadable_objects": {
            "type": "array",
            "items": UNREADABLE_OBJECT,
            "description": "Objects whose data cannot travel as JSON, as their stored text.",
        },
        "unreadable_preferences": {
            "type": "object",
            "properties": {"problem": {"type": "string"}, "data_json": {"type": "string"}},
            "required": ["problem", "data_json"],
        },
    },
    "required": ["user_id", "identities", "objects"],
}
_ERASE_OUT = {
    "type": "object",
    "properties": {
        "objects_deleted": {"type": "integer"},
        "preferences_deleted": {"type": "boolean"},
        "identities_deleted": {"type": "integer"},
    },
    "required": ["objects_deleted", "preferences_deleted", "identities_deleted"],
}
_REVOKE_OUT = {
    "type": "object",
    "properties": {
        "revoked_before": {
            **_TIMESTAMP,
            "description": "Tokens issued at or before this time are refused.",
        },
        "message": {"type": "string"},
    },
    "required": ["revoked_before", "message"],
}

BUILTIN_TOOLS = (
    ToolRow(
        "preferences_get",
        "Get preferences",
        "Read the signed-in user's preferences (one JSON object). Call before answering in a "
        "way the user may have customised, e.g. tone, units or defaults.",
        op.preferences_get,
        {"properties": {}},
        _PREFERENCES_OUT,
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "preferences_update",
        "Update preferences",
        "Change the signed-in user's preferences with a JSON merge patch: keys set to a value "
        "are stored, keys set to null are removed, others are kept. Use when the user states "
        "a lasting preference.",
        op.preferences_update,
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
    ToolRow(
        "my_usage_get",
        "Show my storage use",
        "Show how much the signed-in user stores (objects and bytes, per collection) and the "
        "limits that apply to them. Call when a save was refused with quota_exceeded, to tell "
        "the user why and which collections to clean up, or when the user asks how much "
        "space they use.",
        op.usage,
        {"properties": {}},
        _USAGE_OUT,
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "my_data_export",
        "Export my data",
        "Export everything stored about the signed-in user: identities, preferences and all "
        "objects. Use only when the user asks for a copy of their data.",
        op.export,
        {"properties": {}},
        _EXPORT_OUT,
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "my_data_erase",
        "Erase my data",
        "Permanently delete everything stored about the signed-in user. Use only when the "
        "user explicitly asks to erase all their data, after confirming with them; set "
        "confirm to true. This cannot be undone.",
        op.erase,
        _CONFIRM,
        _ERASE_OUT,
        destructive=True,
        idempotent=True,
        forgets_user=True,
    ),
    ToolRow(
        "my_access_revoke",
        "Revoke my access",
        "Disconnect the signed-in user from this app everywhere: every sign-in they gave it "
        "so far stops working within seconds, this conversation's included, and the app "
        "must be connected again before it can be used. Their stored data is kept (erasing "
        "it is my_data_erase). Use only when the user asks to disconnect, sign out "
        "everywhere or revoke this app's access (e.g. after losing a device), after "
        "confirming with them; set confirm to true.",
        op.revoke_access,
        _CONFIRM,
        _REVOKE_OUT,
        destructive=True,
        idempotent=True,
    ),
)
